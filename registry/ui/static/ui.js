// The dashboard works without this file; it only adds conveniences (copy buttons,
// search-as-you-type lists). Served from /ui/static under a CSP that allows no inline
// script, so every handler is attached here, never written into a page.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copy);
      if (target && navigator.clipboard) navigator.clipboard.writeText(target.textContent);
    });
  }
});
