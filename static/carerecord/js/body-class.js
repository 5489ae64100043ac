// Loaded as a classic script at the very start of <body> (the CSP forbids the usual inline snippet):
// NHS.UK frontend styles its JavaScript-enhanced components from these classes, so set them before paint.
document.body.className +=
  " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " nhsuk-frontend-supported" : "");
