/* Shindig feature "pubsub" (simulated): publish and subscribe through the container. */
gadgets.pubsub = gadgets.pubsub || (function () {
  var listeners = {};
  gadgets.rpc.register("pubsub", function (channel, message) {
    var listener = listeners[channel];
    if (listener) { listener(this.f, message); }
  });
  return {
    publish: function (channel, message) { gadgets.rpc.call("", "pubsub", null, "publish", channel, message); },
    subscribe: function (channel, callback) {
      listeners[channel] = callback;
      gadgets.rpc.call("", "pubsub", null, "subscribe", channel);
    },
    unsubscribe: function (channel) {
      delete listeners[channel];
      gadgets.rpc.call("", "pubsub", null, "unsubscribe", channel);
    }
  };
})();
