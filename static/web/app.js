/* Mediastore web app: plain JS, no build step. Copy buttons, "load more", uploads with progress. */
(function () {
  "use strict";

  // Refusals from the API (its error codes) in words a person understands.
  var SENTENCES = {
    quota_exceeded: "Your organization's storage is full: delete some files or ask for a bigger plan.",
    max_size_exceeded: "This file is larger than your plan allows.",
    request_too_large: "This file is larger than your plan allows.",
    unsupported_media_type: "This type of file cannot be stored here.",
    content_type_mismatch: "The file's contents do not match its type (its name or extension says otherwise).",
    category_not_allowed: "Your plan does not allow this kind of file.",
    invalid_category: "That category does not accept this type of file.",
    empty_file: "This file is empty.",
    invalid_image: "This image is damaged or not really an image.",
    image_too_large: "This image has too many pixels to be stored.",
    rate_limited: "Too many uploads in a short time: wait a moment and try again.",
    too_many_concurrent_uploads: "Too many uploads at once: this one will work once another has finished.",
    not_authenticated: "You were signed out: sign in again and retry.",
    permission_denied: "You are not allowed to upload to this organization.",
    storage_unavailable: "Storage is unavailable right now: try again in a minute."
  };

  function sentenceFor(status, body) {
    var error = body && body.error;
    if (error && SENTENCES[error.code]) return SENTENCES[error.code];
    if (status === 413) return SENTENCES.max_size_exceeded;
    if (status === 403) return "The upload was refused: reload the page and try again.";
    if (error && error.message) return error.message;
    return status ? "The upload failed (" + status + ")." : "The connection was lost during the upload.";
  }

  function formatBytes(n) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  // -- copy buttons --------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    input.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done);
    else { document.execCommand("copy"); done(); }
  });

  // -- gallery: load the next page (keyset cursor) on click or when the link scrolls into view
  function loadMore(link) {
    if (link.dataset.loading) return;
    link.dataset.loading = "1";
    link.textContent = "Loading…";
    fetch(link.href, {headers: {"X-Fragment": "1"}, credentials: "same-origin"})
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.text(); })
      .then(function (html) {
        var item = link.closest("li");
        item.insertAdjacentHTML("beforebegin", html);
        item.remove();
        watchMore();
      })
      .catch(function () { link.textContent = "Load more"; delete link.dataset.loading; });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-load-more]");
    if (!link) return;
    event.preventDefault();
    loadMore(link);
  });

  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) { if (entry.isIntersecting) loadMore(entry.target); });
  }, {rootMargin: "400px"}) : null;

  function watchMore() {
    var link = document.querySelector("[data-load-more]");
    if (observer && link) observer.observe(link);
  }

  // -- upload: one XMLHttpRequest per file to the Media API, with the session and the CSRF token
  function uploadOne(form, file, list) {
    var item = document.createElement("li");
    item.className = "upload";
    item.innerHTML = '<span class="name"></span> <span class="size"></span>' +
      '<progress max="100" value="0"></progress> <span class="status" role="status">Waiting…</span>';
    item.querySelector(".name").textContent = file.name;
    item.querySelector(".size").textContent = formatBytes(file.size);
    list.appendChild(item);
    var bar = item.querySelector("progress"), status = item.querySelector(".status");
    var label = file.name + " upload progress";
    bar.setAttribute("aria-label", label);

    var max = Number(form.dataset.maxBytes);
    if (max && file.size > max) {
      item.classList.add("failed");
      status.textContent = "This file is larger than your plan allows (" + formatBytes(max) + " at most).";
      return;
    }
    var data = new FormData();
    data.append("file", file, file.name);
    ["prompt", "model", "provider", "category"].forEach(function (name) {
      var value = form.elements[name] && form.elements[name].value.trim();
      if (value) data.append(name, value);
    });
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.endpoint);
    xhr.setRequestHeader("X-CSRFToken", form.elements.csrfmiddlewaretoken.value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      bar.value = Math.round(100 * event.loaded / event.total);
      status.textContent = bar.value + "%";
    });
    xhr.addEventListener("load", function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 200 || xhr.status === 201) {
        bar.value = 100;
        item.classList.add("done");
        status.textContent = "";
        var link = document.createElement("a");
        link.href = "/m/" + body.id;
        link.textContent = xhr.status === 200 ? "Already stored: open" : "Done: open";
        status.appendChild(link);
      } else {
        item.classList.add("failed");
        status.textContent = sentenceFor(xhr.status, body);
      }
    });
    xhr.addEventListener("error", function () {
      item.classList.add("failed");
      status.textContent = sentenceFor(0, null);
    });
    status.textContent = "0%";
    xhr.send(data);
  }

  function setUpUpload() {
    var form = document.getElementById("upload");
    if (!form) return;
    var zone = document.getElementById("dropzone"), input = document.getElementById("files");
    var list = document.getElementById("uploads");
    var send = function (files) { Array.prototype.forEach.call(files, function (f) { uploadOne(form, f, list); }); };
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
    });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      send(event.dataTransfer.files);
    });
    zone.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
    });
    input.addEventListener("change", function () { send(input.files); input.value = ""; });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.dataset.ready = "1";  // the drop zone listens (the browser tests wait for this)
  }

  document.addEventListener("DOMContentLoaded", function () { watchMore(); setUpUpload(); });
})();
