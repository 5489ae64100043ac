// The print page's "Print or save as PDF" button: the browser's print dialog. Without JavaScript the button
// stays hidden, and the browser's own print command prints the same page.
const button = document.querySelector("[data-print-button]");
if (button) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
