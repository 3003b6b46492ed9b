// The composer's conveniences (the page works without them): choosing a cache
// reloads the form for it, and the spec box suggests the cache's builds of what is
// typed on the current line; picking one puts `name@version /hash` on that line.
// Text from the server is only ever set as textContent, never parsed as HTML.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const pick = document.getElementById("pick-cache");
  const select = document.getElementById("cache");
  if (pick && select) select.addEventListener("change", () => pick.submit());
  const box = document.getElementById("specs");
  const list = document.getElementById("suggestions");
  if (!box || !list || !box.dataset.suggest) return;
  let timer = null;
  let asked = 0;

  // The line the caret is on: [start, end) of box.value.
  const currentLine = () => {
    const text = box.value;
    const at = box.selectionStart;
    const start = text.lastIndexOf("\n", at - 1) + 1;
    let end = text.indexOf("\n", at);
    if (end < 0) end = text.length;
    return [start, end];
  };

  const hide = () => { list.hidden = true; list.replaceChildren(); };

  const choose = (spec) => {
    const [start, end] = currentLine();
    const text = box.value;
    box.value = text.slice(0, start) + spec + text.slice(end);
    const caret = start + spec.length;
    box.setSelectionRange(caret, caret);
    hide();
    box.focus();
  };

  const show = (suggestions) => {
    list.replaceChildren();
    for (const s of suggestions) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "suggestion";
      button.dataset.spec = s.spec;
      button.textContent = `${s.name}@${s.version} /${s.hash.slice(0, 7)} ${s.target} ${s.compiler}`;
      button.addEventListener("click", () => choose(s.spec));
      item.append(button);
      list.append(item);
    }
    list.hidden = suggestions.length === 0;
  };

  const ask = async () => {
    const [start, end] = currentLine();
    const q = box.value.slice(start, end).trim();
    if (!q || q.includes(" ")) { hide(); return; }
    const mine = ++asked;
    try {
      const r = await fetch(`${box.dataset.suggest}?q=${encodeURIComponent(q)}`,
                            {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!r.ok || mine !== asked) { if (mine === asked) hide(); return; }
      const body = await r.json();
      if (mine === asked) show(body.suggestions || []);
    } catch (e) {
      hide();
    }
  };

  box.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
  box.addEventListener("keydown", (e) => { if (e.key === "Escape") hide(); });
});
