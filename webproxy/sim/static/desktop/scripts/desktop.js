// desktop.js: the simulated Finesse desktop's sign-in, as Finesse's own desktop does it.
//
// 1. GET /finesse/api/UserAuthMode?username=<u> (no credential);
// 2. GET /finesse/api/User/<u> with Basic credentials;
// 3. with the same credentials, what a desktop loads at sign-in: the team's resources
//    (reason codes, wrap-up reasons, phone books, workflows, media properties layouts),
//    ChatConfig, ECCVariableConfig and MediaDomains. A 401 or 403 for one of them marks
//    it unavailable in #resources; any other failure is `error: ...` in #status.
// #status reads `loading`, then `signed-out` once the page can sign in, and `signed-in`
// once everything has loaded. Then the page embeds a gadget (#gadget, with
// data-state="loaded" once its frame has loaded, whatever it answered).
"use strict";

(function () {
  const API = "/finesse/api";
  const GADGET = "/gadgets/ifr?url=/3rdpartygadget/files/HelloGadget/HelloGadget.xml&mid=1";
  const $ = (id) => document.getElementById(id);
  let session = null; // { auth, loginId }

  function setStatus(value) {
    $("status").textContent = value;
  }

  function teamReads(teamId) {
    const team = `${API}/TeamResource/${encodeURIComponent(teamId)}`;
    return [
      ["NotReadyReasonCodes", `${team}/ReasonCodes?category=NOT_READY`],
      ["LogoutReasonCodes", `${team}/ReasonCodes?category=LOGOUT`],
      ["WrapUpReasons", `${team}/WrapUpReasons`],
      ["PhoneBooks", `${team}/PhoneBooks`],
      ["Workflows", `${team}/Workflows`],
      ["MediaPropertiesLayouts", `${team}/MediaPropertiesLayouts`],
    ];
  }

  const GLOBAL_READS = [
    ["ChatConfig", `${API}/ChatConfig`],
    ["ECCVariableConfig", `${API}/ECCVariableConfig`],
    ["MediaDomains", `${API}/MediaDomains`],
  ];

  // One configuration read: its document, or null when Finesse refuses this user (401/403).
  async function readConfig(name, path, auth) {
    try {
      const doc = await finesse.get(path, { auth });
      return { name, status: 200, doc };
    } catch (err) {
      if (err instanceof finesse.FinesseError && (err.status === 401 || err.status === 403)) {
        return { name, status: err.status, doc: null };
      }
      throw err;
    }
  }

  function showUser(doc) {
    const first = finesse.text(doc, "firstName");
    const last = finesse.text(doc, "lastName");
    $("agent-name").textContent = `${first} ${last}`.trim() || finesse.text(doc, "loginId");
    $("agent-state").textContent = finesse.text(doc, "state");
    $("team-id").textContent = finesse.text(doc, "teamId");
  }

  function showReasonCodes(doc) {
    const list = $("reason-codes");
    list.replaceChildren();
    const codes = doc ? Array.from(doc.getElementsByTagName("ReasonCode")) : [];
    for (const code of codes) {
      const item = document.createElement("li");
      item.textContent = finesse.text(code, "label");
      item.dataset.code = finesse.text(code, "code");
      list.append(item);
    }
  }

  function showResources(results) {
    const list = $("resources");
    list.replaceChildren();
    for (const { name, status } of results) {
      const item = document.createElement("li");
      item.textContent = `${name}: ${status === 200 ? "loaded" : `unavailable (${status})`}`;
      item.dataset.name = name;
      item.dataset.status = String(status);
      list.append(item);
    }
  }

  function embedGadget() {
    const frame = document.createElement("iframe");
    frame.id = "gadget";
    frame.title = "HelloGadget";
    frame.dataset.state = "loading";
    frame.addEventListener("load", () => {
      frame.dataset.state = "loaded";
    });
    frame.src = GADGET;
    $("gadgets").replaceChildren(frame);
  }

  async function signIn(user, password) {
    const mode = await finesse.get(`${API}/UserAuthMode?username=${encodeURIComponent(user)}`, {
      nocache: false,
    });
    const authMode = finesse.text(mode, "authMode");
    if (authMode && authMode !== "NON_SSO") {
      throw new Error(`${user} signs in with ${authMode}, which this desktop does not do`);
    }
    const auth = finesse.basic(user, password);
    const userDoc = await finesse.get(`${API}/User/${encodeURIComponent(user)}`, { auth });
    const loginId = finesse.text(userDoc, "loginId") || user;
    const teamId = finesse.text(userDoc, "teamId");
    const reads = [...(teamId ? teamReads(teamId) : []), ...GLOBAL_READS];
    const results = await Promise.all(reads.map(([name, path]) => readConfig(name, path, auth)));
    session = { auth, loginId };
    showUser(userDoc);
    const notReady = results.find((result) => result.name === "NotReadyReasonCodes");
    showReasonCodes(notReady ? notReady.doc : null);
    showResources(results);
    $("signin-form").hidden = true;
    $("agent").hidden = false;
  }

  async function goReady() {
    const path = `${API}/User/${encodeURIComponent(session.loginId)}`;
    await finesse.put(path, "<User><state>READY</state></User>", { auth: session.auth });
    const userDoc = await finesse.get(path, { auth: session.auth });
    $("agent-state").textContent = finesse.text(userDoc, "state");
  }

  function failed(err) {
    setStatus(`error: ${err.message}`);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setStatus("signed-out");
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      setStatus("signing-in");
      signIn($("username").value, $("password").value)
        .then(() => {
          setStatus("signed-in");
          embedGadget();
        })
        .catch(failed);
    });
    $("ready").addEventListener("click", () => {
      setStatus("changing-state");
      goReady()
        .then(() => setStatus("signed-in"))
        .catch(failed);
    });
  });
})();
