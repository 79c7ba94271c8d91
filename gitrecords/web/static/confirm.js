// Forms with a data-confirm attribute ask before they submit (no inline script: the pages'
// Content-Security-Policy allows scripts from this server only).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
