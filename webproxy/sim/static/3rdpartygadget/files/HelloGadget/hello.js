/* HelloGadget: fills #hello once loaded, so a browser test can check it ran. */
(function () {
  "use strict";
  var hello = document.getElementById("hello");
  if (hello) {
    hello.textContent = "Hello from HelloGadget";
    hello.setAttribute("data-loaded", "true");
  }
})();
