// Initialise NHS.UK frontend components (header menu, error summary focus, buttons, ...).
// Everything works without this file; it only adds the frontend's progressive enhancements.
import { initAll, InitError } from "../../vendor/nhsuk-frontend/nhsuk-frontend.min.js";

function initComponents() {
  initAll({
    onError(error) {
      // Components already set up before an htmx swap report InitError: expected, not a fault.
      if (!(error instanceof InitError)) {
        console.error(error);
      }
    },
  });
}

initComponents();

// htmx swaps (boosted navigation, a new page of a record list) bring in new components.
document.addEventListener("htmx:afterSettle", (event) => {
  initComponents();
  // A swapped list takes focus so keyboard and screen reader users land on the new content.
  const target = event.detail && event.detail.elt;
  if (target && target.matches && target.matches("[data-focus-after-swap]")) {
    target.focus({ preventScroll: false });
  }
});
