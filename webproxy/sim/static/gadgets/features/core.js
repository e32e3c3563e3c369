/* Shindig feature "core" (simulated): the gadgets namespace, config and util. */
var gadgets = window.gadgets || {};
window.gadgets = gadgets;
gadgets.config = gadgets.config || (function () {
  var values = {};
  return {
    init: function (config) { for (var key in config) { values[key] = config[key]; } },
    get: function (name) { return name ? values[name] || {} : values; }
  };
})();
gadgets.util = gadgets.util || (function () {
  var handlers = [];
  var params = null;
  return {
    registerOnLoadHandler: function (fn) { handlers.push(fn); },
    runOnLoadHandlers: function () {
      for (var i = 0; i < handlers.length; i++) { handlers[i](); }
    },
    getUrlParameters: function () {
      if (params === null) {
        params = {};
        var query = window.location.search.substring(1).split("&");
        for (var i = 0; i < query.length; i++) {
          var pair = query[i].split("=");
          if (pair[0]) { params[decodeURIComponent(pair[0])] = decodeURIComponent(pair[1] || ""); }
        }
      }
      return params;
    }
  };
})();
