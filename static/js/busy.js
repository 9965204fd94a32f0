// A form with data-busy shows its submit button busy once sent (a request that takes seconds).
document.addEventListener("submit", (event) => {
  if (event.defaultPrevented || !event.target.hasAttribute("data-busy")) return;
  event.target.querySelector("button[type=submit], button:not([type])")?.setAttribute("aria-busy", "true");
});
