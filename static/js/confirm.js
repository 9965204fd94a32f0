// A form with data-confirm="..." asks first, in the page's <dialog id="confirm-dialog">; only "yes" submits.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.confirm || form.dataset.confirmed) return;
  event.preventDefault();
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector("[data-title]").textContent = form.dataset.confirmTitle || "Are you sure?";
  dialog.querySelector("[data-body]").textContent = form.dataset.confirm;
  dialog.querySelector("button[value=yes]").textContent = form.dataset.confirmYes || "Yes";
  dialog.querySelector("button[value=no]").textContent = form.dataset.confirmNo || "No";
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "yes") return;
    // A polled fragment may have replaced the form meanwhile: submit its current copy.
    const target = form.isConnected ? form : document.querySelector(`form[action="${form.getAttribute("action")}"]`);
    if (!target) return;
    target.dataset.confirmed = "1";
    target.requestSubmit();
  }, { once: true });
  dialog.showModal();
});
