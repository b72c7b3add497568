// Kargo's only script besides htmx: copy buttons and confirmations (no inline scripts: CSP).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copyTarget);
  if (!input) return;
  input.select();
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 2000); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, () => { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// Remove buttons of repeatable form rows (custom resource kinds on the cluster form).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-remove-row]");
  if (!button) return;
  const row = button.closest("[data-resource-row]");
  if (row) row.remove();
});

// Live partials: a poll names the version it shows, so an unchanged one is answered 204 and
// swaps nothing (app/blueprints/live.py). A browser answering 304 from its cache would hand
// htmx the old 200, which htmx would swap.
document.addEventListener("htmx:configRequest", (event) => {
  const version = event.detail.elt && event.detail.elt.dataset && event.detail.elt.dataset.liveVersion;
  if (version && event.detail.verb === "get") event.detail.headers["X-Kargo-Live-Version"] = version;
});
