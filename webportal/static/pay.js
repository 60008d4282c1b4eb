// The card form: Stripe.js (the only script not served by the portal)
// collects the card in its own frames and confirms the PaymentIntent the
// API made. When Stripe.js cannot be loaded the page says so.
(function () {
  "use strict";
  var root = document.getElementById("card-payment");
  if (!root) { return; }
  var status = document.getElementById("card-status");
  var form = document.getElementById("card-form");
  var button = document.getElementById("card-submit");
  var done = false;
  function say(text) { status.textContent = text; }
  function unreachable() { if (!done) { done = true; say(root.dataset.unreachable); status.className = "problem"; } }
  var timer = setTimeout(unreachable, 15000);
  var s = document.createElement("script");
  s.src = "https://js.stripe.com/v3/";
  s.onerror = function () { clearTimeout(timer); unreachable(); };
  s.onload = function () {
    clearTimeout(timer);
    if (typeof window.Stripe !== "function") { unreachable(); return; }
    done = true;
    var stripe = window.Stripe(root.dataset.key);
    var card = stripe.elements().create("card");
    card.mount("#card-element");
    form.hidden = false;
    say("Enter your card details.");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      button.disabled = true;
      say("Paying\u2026");
      stripe.confirmCardPayment(root.dataset.secret, { payment_method: { card: card } }).then(function (result) {
        if (result.error) {
          button.disabled = false;
          say(result.error.message || "The payment did not go through. Check the card details and try again.");
          return;
        }
        window.location.assign(root.dataset.return);
      });
    });
  };
  document.head.appendChild(s);
})();
