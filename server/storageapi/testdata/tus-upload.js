// Uploads a file with tus-js-client (from npm) as an app would, retrying
// after failures, and prints the final response's body (the file's JSON).
// Usage: node tus-upload.js <endpoint> <token> <file> <name> <type>
const fs = require('fs');
const tus = require('tus-js-client');

const [endpoint, token, path, name, type] = process.argv.slice(2);
const data = fs.readFileSync(path);
let failures = 0;
const upload = new tus.Upload(data, {
  endpoint,
  headers: { Authorization: 'Bearer ' + token },
  metadata: { filename: name, filetype: type },
  chunkSize: 4 * 1024 * 1024,
  retryDelays: [0, 100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000],
  onShouldRetry: (err) => { failures++; return true; },
  onError: (err) => { console.error('upload failed: ' + err); process.exit(1); },
  onSuccess: (payload) => {
    const res = payload.lastResponse;
    process.stdout.write(JSON.stringify({ status: res.getStatus(), body: res.getBody(), url: upload.url, failures }));
  },
});
upload.start();
