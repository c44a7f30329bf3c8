// Atlas web pages work without JavaScript; this file adds confirmations
// before destructive forms and a progress bar to the box upload form.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function uploadMessage(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    if (body.errors && body.errors.length) {
      return body.errors.join("; ");
    }
  } catch (ignored) {
    // Not JSON: fall through to the status line.
  }
  return xhr.status ? `the server answered ${xhr.status}` : "the connection failed";
}

function setupUpload(form) {
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const status = document.getElementById("upload-status");
  const done = document.getElementById("upload-done");
  const button = form.querySelector("button[type=submit]");

  const show = (fraction) => {
    const value = Math.floor(fraction * 100);
    bar.value = value;
    percent.textContent = `${value}%`;
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) {
        show(progress.loaded / progress.total);
      }
    });
    xhr.addEventListener("load", () => {
      button.disabled = false;
      if (xhr.status >= 200 && xhr.status < 300) {
        show(1);
        status.textContent = "";
        button.hidden = true;
        form.querySelector("input[type=file]").closest("label").hidden = true;
        done.hidden = false;
      } else {
        status.textContent = `The upload failed: ${uploadMessage(xhr)}. Reload the page to try again.`;
        status.className = "error-text";
      }
    });
    xhr.addEventListener("error", () => {
      button.disabled = false;
      status.textContent = "The upload failed: the connection was lost. Reload the page to try again.";
      status.className = "error-text";
    });
    form.querySelector(".progress").hidden = false;
    button.disabled = true;
    show(0);
    status.textContent = "Uploading…";
    xhr.send(new FormData(form));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (form) {
    setupUpload(form);
  }
});
