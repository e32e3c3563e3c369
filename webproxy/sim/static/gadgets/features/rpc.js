/* Shindig feature "rpc" (simulated): gadgets.rpc over window.postMessage. */
gadgets.rpc = gadgets.rpc || (function () {
  var services = {};
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    var service = services[data.s];
    if (service) { service.apply({ f: data.f, a: data.a }, data.a || []); }
  });
  return {
    register: function (name, fn) { services[name] = fn; },
    unregister: function (name) { delete services[name]; },
    call: function (target, name, callback) {
      var args = Array.prototype.slice.call(arguments, 3);
      var peer = target ? window.frames[target] : window.parent;
      if (peer) { peer.postMessage({ s: name, f: window.name, a: args }, "*"); }
    }
  };
})();
