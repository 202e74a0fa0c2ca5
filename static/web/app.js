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

  // -- upload ------------------------------------------------------------------------------
  // Small files: one XMLHttpRequest per file to the Media API, with the session and the CSRF token.
  // Large files, where the backend takes them (S3): prepare-upload, then the bytes straight to the
  // bucket (one presigned PUT, or presigned parts), then the completion call; the server checks them.

  // One request; resolves with its status and JSON body (status 0: the connection failed).
  function send(method, url, options) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      var headers = options.headers || {};
      Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (options.progress) xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) options.progress(event.loaded);
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        resolve({status: xhr.status, body: body, xhr: xhr});
      });
      xhr.addEventListener("error", function () { resolve({status: 0, body: null, xhr: xhr}); });
      xhr.send(options.body === undefined ? null : options.body);
    });
  }

  function apiHeaders(form, json) {
    var headers = {"X-CSRFToken": form.elements.csrfmiddlewaretoken.value, "Accept": "application/json"};
    if (json) headers["Content-Type"] = "application/json";
    return headers;
  }

  function details(form) {
    var values = {};
    ["prompt", "model", "provider", "category"].forEach(function (name) {
      var value = form.elements[name] && form.elements[name].value.trim();
      if (value) values[name] = value;
    });
    return values;
  }

  function throughApi(form, file, progress) {
    var data = new FormData();
    data.append("file", file, file.name);
    var values = details(form);
    Object.keys(values).forEach(function (name) { data.append(name, values[name]); });
    return send("POST", form.dataset.endpoint, {headers: apiHeaders(form, false), body: data, progress: progress});
  }

  // Each part by its own PUT, one after another, a failed one tried again twice; the ETags in order.
  function sendParts(multipart, file, progress) {
    var etags = [], done = 0;
    function part(index, attempt) {
      if (index === multipart.parts.length) return Promise.resolve({status: 200, parts: etags});
      var spec = multipart.parts[index], start = index * multipart.part_size;
      var blob = file.slice(start, Math.min(start + multipart.part_size, file.size));
      return send("PUT", spec.url, {body: blob, progress: function (loaded) { progress(done + loaded); }})
        .then(function (answer) {
          var etag = answer.status === 200 && answer.xhr.getResponseHeader("ETag");
          if (etag) {
            etags.push({part_number: spec.part_number, etag: etag});
            done += blob.size;
            return part(index + 1, 0);
          }
          if (attempt < 2 && (answer.status === 0 || answer.status >= 500)) return part(index, attempt + 1);
          return answer.status === 200 ? {status: 0, body: null, noEtag: true} : answer;
        });
    }
    return part(0, 0);
  }

  // Where a file goes: "api" (one request through the server), "direct" (one presigned PUT to the
  // bucket) or "multipart" (presigned parts: large files, and any above what one request may carry).
  function routeFor(form, file) {
    if (!form.dataset.directMinBytes) return "api";
    var oneRequest = Number(form.dataset.maxBytes);
    if (file.size >= Number(form.dataset.multipartMinBytes) || file.size > oneRequest) return "multipart";
    return file.size >= Number(form.dataset.directMinBytes) ? "direct" : "api";
  }

  function direct(form, file, progress, row, multipart) {
    var values = details(form);
    values.filename = file.name;
    values.content_type = file.type || "application/octet-stream";
    values.bytes = file.size;
    values.multipart = multipart;
    return send("POST", form.dataset.prepareEndpoint, {headers: apiHeaders(form, true), body: JSON.stringify(values)})
      .then(function (prepared) {
        if (prepared.status !== 200 && prepared.status !== 201) return prepared;
        var media = "/v1/media/" + encodeURIComponent(prepared.body.id);
        var sent = multipart ? sendParts(prepared.body.multipart, file, progress)
          : send("PUT", prepared.body.upload_url, {headers: prepared.body.headers, body: file, progress: progress});
        return sent.then(function (answer) {
          if (answer.status === 200) {
            row.say("Checking…");
            return send("PUT", media, {headers: apiHeaders(form, true),
                                       body: JSON.stringify(multipart ? {parts: answer.parts} : {})});
          }
          // Not stored: give the reservation back. A bucket the browser cannot reach (no CORS rule
          // for this site, an address only the server knows) refuses before any byte: the file
          // then goes through the server instead.
          var abandon = send("DELETE", media, {headers: apiHeaders(form, false)});
          if (answer.status === 0 && file.size <= Number(form.dataset.maxBytes)) {
            return abandon.then(function () { row.say("Sending through the server…"); return throughApi(form, file, progress); });
          }
          return abandon.then(function () { return {status: answer.status, body: null, storage: true}; });
        });
      });
  }

  function uploadOne(form, file, list) {
    var item = document.createElement("li");
    item.className = "upload";
    item.innerHTML = '<span class="name"></span> <span class="size"></span>' +
      '<progress max="100" value="0"></progress> <span class="status" role="status">Waiting…</span>';
    item.querySelector(".name").textContent = file.name;
    item.querySelector(".size").textContent = formatBytes(file.size);
    list.appendChild(item);
    var bar = item.querySelector("progress"), status = item.querySelector(".status");
    bar.setAttribute("aria-label", file.name + " upload progress");
    var row = {say: function (text) { status.textContent = text; }};

    var route = routeFor(form, file);
    item.dataset.route = route;
    var max = Number(route === "api" ? form.dataset.maxBytes : form.dataset.directMaxBytes);
    if (max && file.size > max) {
      item.classList.add("failed");
      status.textContent = "This file is larger than your plan allows (" + formatBytes(max) + " at most).";
      return;
    }
    var progress = function (loaded) {
      bar.value = Math.min(100, Math.round(100 * loaded / Math.max(file.size, 1)));
      status.textContent = bar.value + "%";
    };
    status.textContent = "0%";
    var sent = route === "api" ? throughApi(form, file, progress) : direct(form, file, progress, row, route === "multipart");
    sent.then(function (answer) {
      if (answer.status === 200 || answer.status === 201) {
        bar.value = 100;
        item.classList.add("done");
        status.textContent = "";
        var link = document.createElement("a");
        link.href = "/m/" + answer.body.id;
        link.textContent = answer.body.deduped ? "Already stored: open" : "Done: open";
        status.appendChild(link);
      } else {
        item.classList.add("failed");
        status.textContent = !answer.storage ? sentenceFor(answer.status, answer.body)
          : answer.status ? "The storage refused the file (" + answer.status + "): try again; if it keeps failing, tell your administrator."
          : "The storage does not take uploads from this page: ask your administrator to allow it (manage.py configure_bucket_cors).";
      }
    });
  }

  function setUpUpload() {
    var form = document.getElementById("upload");
    if (!form) return;
    var zone = document.getElementById("dropzone"), input = document.getElementById("files");
    var list = document.getElementById("uploads");
    var start = function (files) { Array.prototype.forEach.call(files, function (f) { uploadOne(form, f, list); }); };
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
    });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      start(event.dataTransfer.files);
    });
    zone.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
    });
    input.addEventListener("change", function () { start(input.files); input.value = ""; });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.dataset.ready = "1";  // the drop zone listens (the browser tests wait for this)
  }

  document.addEventListener("DOMContentLoaded", function () { watchMore(); setUpUpload(); });
})();
