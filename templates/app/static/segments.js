// The segment editor's live check: a moment after the expression (or the topic)
// changes, it is posted to /app/segments/check and the result area shows the error
// with a caret under its place, or the counts and a sample of recipients. The same
// markup as the page renders when the Check button posts the form without this script.
// Everything from the server is set as text, never as markup.
"use strict";

(() => {
  const form = document.getElementById("segment-form");
  const expression = document.getElementById("expression");
  const result = document.getElementById("segment-result");
  if (!form || !expression || !result || !form.dataset.check) return;
  const nameInput = document.getElementById("name");
  const topicSelect = document.getElementById("topic");
  const checkButton = document.getElementById("check-button");
  const WAIT_MS = 300;

  let timer = null;
  let latest = 0;
  let inFlight = null;

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function card(label, value, id) {
    const attributes = id ? { class: "value", id } : { class: "value" };
    return element("div", { class: "card" },
      element("span", { class: "label" }, label), " ", element("span", attributes, value));
  }

  function counted(outcome) {
    const count = outcome.count;
    const cards = element("div", { class: "cards" },
      card("Matching", count.matching, "segment-count"),
      card("Eligible", count.eligible, "segment-eligible"),
      card("Excluded by suppression", count.excluded_by_suppression),
      card("Excluded by status", count.excluded_by_status),
      card("Excluded by consent", count.excluded_by_consent));
    const eligible = outcome.topic
      ? "Eligible: active, not suppressed and subscribed to \u201c" + outcome.topic + "\u201d."
      : "Eligible: active and not suppressed; consent is not checked (choose a topic to count it).";
    const hint = element("p", { class: "hint" },
      eligible + " Excluded by status: unsubscribed, bounced or erased.");
    return [cards, hint, element("h3", {}, "Sample"), sample(outcome.sample)];
  }

  function sample(recipients) {
    if (!recipients.length) return element("p", { class: "muted" }, "No recipient matches.");
    const head = element("thead", {}, element("tr", {},
      ...["Email", "Name", "Country", "Status"].map((h) => element("th", { scope: "col" }, h))));
    const rows = recipients.map((r) => element("tr", {},
      element("td", {}, element("a", { href: "/app/recipients/" + encodeURIComponent(r.email) }, r.email)),
      element("td", {}, r.name), element("td", {}, r.country), element("td", {}, r.status)));
    const table = element("table", { id: "segment-sample" },
      element("caption", { class: "muted" }, "The first matching recipients, lowest id first."),
      head, element("tbody", {}, ...rows));
    return element("div", { class: "table-wrap" }, table);
  }

  function refused(outcome) {
    const place = outcome.line ? "Line " + outcome.line + ", column " + outcome.column + ": " : "";
    const box = element("div", { class: "problems" }, element("p", { class: "error" }, place + outcome.error));
    if (outcome.caret) {
      box.append(element("pre", { class: "caret-block" },
        outcome.source_line + "\n", element("span", { class: "caret" }, outcome.caret)));
    }
    return [box];
  }

  function failed(message) {
    return [element("p", { class: "error" }, message)];
  }

  function show(nodes) {
    result.replaceChildren(...nodes);
  }

  async function check() {
    clearTimeout(timer);
    const sequence = ++latest;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    const body = {
      expression: expression.value,
      name: nameInput ? nameInput.value.trim() : "",
      topic: topicSelect ? topicSelect.value : "",
    };
    result.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.check, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRF-Token": csrfToken(),
        },
        body: JSON.stringify(body),
        signal: inFlight.signal,
      });
      if (sequence !== latest) return;
      if (!response.ok) {
        show(failed("The check did not run (" + response.status + "): reload the page and try again."));
        return;
      }
      const outcome = await response.json();
      if (sequence !== latest) return;
      show(outcome.ok ? counted(outcome) : refused(outcome));
    } catch (error) {
      if (error.name !== "AbortError" && sequence === latest) {
        show(failed("The check did not run: the server could not be reached."));
      }
    } finally {
      if (sequence === latest) result.removeAttribute("aria-busy");
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, WAIT_MS);
  }

  expression.addEventListener("input", later);
  if (topicSelect) topicSelect.addEventListener("change", check);
  if (nameInput && !nameInput.readOnly) nameInput.addEventListener("input", later);
  if (checkButton) {
    checkButton.addEventListener("click", (event) => {
      event.preventDefault();
      check();
    });
  }
  // A stored segment, or a form shown again without a result: count it now.
  if (expression.value.trim() && !result.querySelector(".cards, .problems")) check();
})();
