// The warning before the idle sign-out (templates/_partials/timeout_warning.html), two minutes before it.
//
// The count starts from the last server response: <body data-idle-seconds> is what the session had left when
// the page was drawn; after "Stay signed in", data-idle-window-seconds (a whole idle period); after any other
// request of the page's own (htmx), data-idle-after-request-seconds (the least a request leaves: the server
// renews the expiry at most once a minute). Tabs share the latest deadline through localStorage, so a tab in
// use keeps the others from signing out. "Stay signed in" (or Escape) POSTs to /accounts/stay-signed-in/;
// at zero the dialog's "Sign out" form is sent, so a screen left alone does not go on showing a record.
// Without this file nothing changes: the session ends on the server as it always has.
//
// The dialog is looked up each time, never kept: a boosted link (htmx) swaps the whole body, dialog included.

const WARN_SECONDS = 120;
const ANNOUNCE_AT = [120, 60, 30, 10];
const STORAGE_KEY = "carerecord:idle-deadline";

const seconds = (name) => Number.parseInt(document.body.dataset[name], 10);
const idleSeconds = seconds("idleSeconds");
const windowSeconds = seconds("idleWindowSeconds");
const afterRequestSeconds = seconds("idleAfterRequestSeconds");

let deadline = 0;
let returnFocusTo = null;
let lastAnnounced = null;
let signingOut = false;
let timer = null;

const dialog = () => document.querySelector("[data-timeout-dialog]");

function storedDeadline() {
  try {
    return Number.parseInt(window.localStorage.getItem(STORAGE_KEY), 10) || 0;
  } catch {
    return 0; // storage refused (a policy, private browsing): each tab keeps its own count
  }
}

function renewedFor(secondsLeft) {
  deadline = Math.max(deadline, Date.now() + secondsLeft * 1000);
  try {
    if (deadline > storedDeadline()) window.localStorage.setItem(STORAGE_KEY, String(deadline));
  } catch {
    // as above
  }
}

function describe(total) {
  const minutes = Math.floor(total / 60);
  const rest = total % 60;
  const parts = [];
  if (minutes) parts.push(`${minutes} minute${minutes === 1 ? "" : "s"}`);
  if (rest || !minutes) parts.push(`${rest} second${rest === 1 ? "" : "s"}`);
  return parts.join(" ");
}

function announce(element, secondsLeft) {
  element.querySelector("[data-timeout-announcement]").textContent =
    `You will be signed out in ${describe(secondsLeft)}. Select "Stay signed in" to carry on.`;
}

// The smallest of ANNOUNCE_AT not under the time left: what it was last announced as.
const markOf = (secondsLeft) => ANNOUNCE_AT.filter((at) => at >= secondsLeft).pop();

function update(element, secondsLeft) {
  element.querySelector("[data-timeout-countdown]").textContent = describe(secondsLeft);
  // Announced again only as it passes a few points: a screen reader reading out a clock helps nobody.
  const mark = markOf(secondsLeft);
  if (mark !== lastAnnounced) {
    lastAnnounced = mark;
    announce(element, mark);
  }
}

function open(element, secondsLeft) {
  returnFocusTo = document.activeElement;
  element.showModal();
  element.querySelector("[data-timeout-focus]").focus();
  lastAnnounced = markOf(secondsLeft);
  announce(element, secondsLeft);
  update(element, secondsLeft);
}

function close(element) {
  if (!element.open) return;
  element.close();
  element.querySelector("[data-timeout-announcement]").textContent = "";
  if (returnFocusTo && document.contains(returnFocusTo)) returnFocusTo.focus();
  returnFocusTo = null;
}

function signOut(element) {
  if (signingOut) return;
  signingOut = true;
  window.clearInterval(timer);
  element.querySelector("[data-timeout-sign-out]").submit();
}

function tick() {
  const element = dialog();
  if (!element) return;
  deadline = Math.max(deadline, storedDeadline());
  const secondsLeft = Math.ceil((deadline - Date.now()) / 1000);
  if (secondsLeft <= 0) signOut(element);
  else if (secondsLeft > WARN_SECONDS) close(element);
  else if (element.open) update(element, secondsLeft);
  else open(element, secondsLeft);
}

async function stay() {
  const form = dialog().querySelector("[data-timeout-stay]");
  let response;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      redirect: "manual",
    });
  } catch {
    return; // offline for a moment: the warning stays open and the count goes on
  }
  if (response.status === 204) {
    renewedFor(windowSeconds);
    tick();
  } else {
    // Already signed out (the session ended, or reached its time limit): a reload shows the sign-in page.
    window.location.reload();
  }
}

function start() {
  renewedFor(idleSeconds);
  document.addEventListener("submit", (event) => {
    if (event.target.matches("[data-timeout-stay]")) {
      event.preventDefault();
      stay();
    }
  });
  // Escape: whoever pressed it is here, so it counts as "Stay signed in", not as hiding the warning.
  // ("cancel" does not bubble: caught on the way down.)
  document.addEventListener(
    "cancel",
    (event) => {
      if (event.target.matches && event.target.matches("[data-timeout-dialog]")) {
        event.preventDefault();
        stay();
      }
    },
    true,
  );
  // Any other request this page made (a page of a list, a boosted link) renewed the session too.
  document.addEventListener("htmx:afterRequest", (event) => {
    const xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.status >= 200 && xhr.status < 400) {
      renewedFor(afterRequestSeconds);
      tick();
    }
  });
  window.addEventListener("storage", (event) => {
    if (event.key === STORAGE_KEY) tick();
  });
  timer = window.setInterval(tick, 1000);
  tick();
}

const element = dialog();
if (element && typeof element.showModal === "function" && [idleSeconds, windowSeconds].every(Number.isFinite)) {
  start();
}
