// The edit and new-record pages: a form generated from the record's JSON Schema by json-editor
// (vendor/jsoneditor.js), with the raw JSON one click away.
//
// The form only writes the JSON text of the page's textarea, which is what the server reads,
// validates and saves: without JavaScript, or without a schema, the page is that textarea alone.
// The schema comes from the page as a JSON data block, every $ref already resolved by the server
// in the schema store, so json-editor loads nothing. No inline script: the pages'
// Content-Security-Policy allows scripts from this server only.
(function () {
  "use strict";

  var schemaBlock = document.getElementById("record-schema");
  var holder = document.getElementById("record-form");
  var textarea = document.getElementById("data");
  var views = document.querySelector(".views");
  var jsonView = document.querySelector(".json-view");
  var saveForm = document.getElementById("record-save");
  if (!schemaBlock || !holder || !textarea || !views || !jsonView || typeof JSONEditor === "undefined") {
    return;
  }
  // Record data and schema text are text, never HTML. Without DOMPurify, json-editor "purifies"
  // every string value by parsing it as HTML in a detached element and keeping its text: an
  // unchanged save lost "<i>", "a<b and c>d" and the like, and a value such as <img onerror=...>
  // became a live element (only the Content-Security-Policy kept its handler from running).
  // Values go into inputs' value and labels into textContent, where text is safe as it is.
  function asText(value) {
    return value;
  }
  JSONEditor.AbstractEditor.prototype.purify = asText;
  JSONEditor.AbstractEditor.prototype.cleanText = asText;
  JSONEditor.AbstractTheme.prototype.cleanText = asText;

  var schema = JSON.parse(schemaBlock.textContent);
  var errorBlock = document.getElementById("record-errors");
  var serverErrors = errorBlock ? JSON.parse(errorBlock.textContent) : [];
  var note = views.querySelector(".view-note");
  var editor = null;
  var current = "json";
  var STORED_VIEW = "gitrecords.editView";

  function parsed() {
    try {
      return { ok: true, value: JSON.parse(textarea.value) };
    } catch (err) {
      return { ok: false, message: err.message };
    }
  }

  // the form's value into the textarea (what the server reads)
  function sync() {
    if (editor && editor.ready) {
      textarea.value = JSON.stringify(editor.getValue(), null, 2) + "\n";
    }
  }

  function pressed(view) {
    views.querySelectorAll("button[data-view]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-view") === view));
    });
  }

  function show(view) {
    note.textContent = "";
    if (view === "form") {
      var data = parsed();
      if (!data.ok || data.value === null || typeof data.value !== "object" || Array.isArray(data.value)) {
        note.textContent = data.ok
          ? "The record must be a JSON object to be edited as a form."
          : "The JSON does not parse (" + data.message + "): fix it here to edit it as a form.";
        return;
      }
      if (editor === null) {
        create(data.value);
      } else {
        editor.setValue(data.value);
      }
      holder.hidden = false;
      jsonView.hidden = true;
    } else {
      sync();
      holder.hidden = true;
      jsonView.hidden = false;
    }
    current = view;
    pressed(view);
  }

  function create(value) {
    editor = new JSONEditor(holder, {
      schema: schema,
      startval: value,
      theme: "html",
      iconlib: null,
      // the raw JSON is the page's own view; json-editor's per-object JSON and property pickers
      // would be a second way to the same thing
      disable_edit_json: true,
      disable_properties: false,
      prompt_before_delete: false,
      show_errors: "interaction",
      // the form holds what the record holds: the optional fields it has (others are added
      // with the "Object Properties" button), and empty strings stay empty strings
      use_default_values: true,
      display_required_only: true,
    });
    editor.on("ready", function () {
      markServerErrors();
      editor.on("change", sync);
    });
  }

  // The server's problems with the last save, each next to its field (and still listed above the
  // form); a pointer to a field the form does not show lands on the nearest one it does.
  function markServerErrors() {
    serverErrors.forEach(function (error, n) {
      var path = error.path;
      var field = editor.getEditor(path);
      while (!field && path.lastIndexOf(".") > 0) {
        path = path.slice(0, path.lastIndexOf("."));
        field = editor.getEditor(path);
      }
      if (!field || !field.container) {
        return;
      }
      var message = document.createElement("p");
      message.className = "field-error";
      message.id = "server-error-" + n;
      message.textContent = (path === error.path ? "" : error.pointer + ": ") + error.message;
      var input = field.input;
      if (input && input.parentNode) {
        input.parentNode.insertBefore(message, input.nextSibling);
        input.setAttribute("aria-invalid", "true");
        var described = input.getAttribute("aria-describedby");
        input.setAttribute("aria-describedby", (described ? described + " " : "") + message.id);
      } else {
        var heading = field.title || field.header;
        if (heading && heading.parentNode === field.container) {
          field.container.insertBefore(message, heading.nextSibling);
        } else {
          field.container.insertBefore(message, field.container.firstChild);
        }
      }
      field.container.classList.add("has-server-error");
      // the message is about the value the server saw: gone once the field changes
      field.container.addEventListener(
        "change",
        function () {
          message.remove();
          field.container.classList.remove("has-server-error");
          if (input) {
            input.removeAttribute("aria-invalid");
          }
        },
        { once: true, capture: true } // json-editor stops the event on its way up
      );
    });
  }

  views.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-view]");
    if (button && button.getAttribute("data-view") !== current) {
      show(button.getAttribute("data-view"));
      remember(current);
    }
  });

  // the view chosen last in this tab is the one the next edit page opens with
  function remember(view) {
    try {
      window.sessionStorage.setItem(STORED_VIEW, view);
    } catch (err) {
      // storage refused (private mode): the form stays the default
    }
  }

  function remembered() {
    try {
      return window.sessionStorage.getItem(STORED_VIEW) === "json" ? "json" : "form";
    } catch (err) {
      return "form";
    }
  }

  saveForm.addEventListener("submit", function () {
    if (current === "form") {
      // a field still being typed in has not told json-editor yet
      var active = document.activeElement;
      if (active && holder.contains(active)) {
        active.dispatchEvent(new Event("change", { bubbles: true }));
      }
      sync();
    }
  });

  views.hidden = false;
  if (remembered() === "form") {
    show("form"); // stays on the raw JSON, with a note, when the text does not parse
  } else {
    pressed("json");
  }
})();
