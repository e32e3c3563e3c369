// finesse.js: a tiny client for the Finesse REST API, as Cisco's finesse.js talks to it.
//
// Basic credentials go in an explicit Authorization header (credentials: "omit", so the
// browser never prompts and never adds its own); every GET carries nocache=<epoch ms>;
// answers are parsed as XML. A non-2xx answer rejects with a FinesseError that keeps the
// status and Finesse's <ErrorType>.
"use strict";

(function (global) {
  class FinesseError extends Error {
    constructor(status, path, errorType) {
      super(`${status} ${errorType || "error"} for ${path}`);
      this.name = "FinesseError";
      this.status = status;
      this.path = path;
      this.errorType = errorType;
    }
  }

  function basic(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    let binary = "";
    for (const byte of bytes) {
      binary += String.fromCharCode(byte);
    }
    return `Basic ${btoa(binary)}`;
  }

  function withNocache(path) {
    return `${path}${path.includes("?") ? "&" : "?"}nocache=${Date.now()}`;
  }

  function parse(text) {
    if (!text) {
      return null;
    }
    const doc = new DOMParser().parseFromString(text, "application/xml");
    return doc.getElementsByTagName("parsererror").length ? null : doc;
  }

  // The text of the first `tag` under `node` (a Document or an Element), or "".
  function text(node, tag) {
    const found = node ? node.getElementsByTagName(tag)[0] : undefined;
    return found ? found.textContent : "";
  }

  async function request(method, path, { auth, body, nocache = true } = {}) {
    const headers = { Accept: "application/xml" };
    if (auth) {
      headers.Authorization = auth;
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/xml";
    }
    const url = method === "GET" && nocache ? withNocache(path) : path;
    const response = await fetch(url, { method, headers, body, credentials: "omit" });
    const doc = parse(await response.text());
    if (!response.ok) {
      throw new FinesseError(response.status, path, text(doc, "ErrorType"));
    }
    return doc;
  }

  global.finesse = {
    FinesseError,
    basic,
    text,
    get: (path, options) => request("GET", path, options),
    put: (path, body, options) => request("PUT", path, { ...options, body }),
  };
})(window);
