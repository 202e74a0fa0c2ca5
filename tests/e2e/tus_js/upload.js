// Upload one file with tus-js-client in chunks, retrying (and so resuming from the server's
// offset) when a request fails; print the upload URL and the media id the last PATCH answered.
// usage: node upload.js ENDPOINT API_KEY FILE CHUNK_SIZE METADATA_JSON
"use strict";
const fs = require("fs");
const tus = require("tus-js-client");

const [endpoint, apiKey, path, chunkSize, metadata] = process.argv.slice(2);
let mediaId = null;
let failures = 0;
const upload = new tus.Upload(fs.createReadStream(path), {
  endpoint,
  uploadSize: fs.statSync(path).size,
  chunkSize: Number(chunkSize),
  headers: { Authorization: `Bearer ${apiKey}` },
  metadata: JSON.parse(metadata),
  retryDelays: [0, 300, 1000, 3000],
  removeFingerprintOnSuccess: true,
  onShouldRetry: (err) => { failures += 1; return true; },
  onAfterResponse: (req, res) => {
    const id = res.getHeader("Mediastore-Media-Id");
    if (req.getMethod() === "PATCH" && id) mediaId = id;
  },
  onError: (err) => { console.error(String(err)); process.exit(1); },
  onSuccess: () => { console.log(JSON.stringify({ url: upload.url, mediaId, failures })); },
});
upload.start();
