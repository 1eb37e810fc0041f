// The MCNet web page: pick a photo and a driving video, submit them to POST /animate,
// follow the job's progress events (GET /jobs/{id}/events; polling GET /jobs/{id} when
// the stream is unavailable) until the job ends, then show and offer the MP4.
// After a job, the driving video's motion can be kept as a template (POST /templates,
// polled at GET /templates/{id}): the next photos are sent with `template=<id>` instead
// of the video. The template's id is remembered in localStorage, forgotten on a 404.
// Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

(function () {
  const POLL_MS = 700;
  const POLL_MAX_MS = 5000;
  const KEY_STORE = "mcnet.apiKey";
  const TEMPLATE_STORE = "mcnet.template";

  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const form = $("job-form");
  const sourceInput = $("source");
  const drivingInput = $("driving");
  const sourcePreview = $("source-preview");
  const drivingPreview = $("driving-preview");
  const submitButton = $("submit");
  const submitHelp = $("submit-help");
  const pasteBack = $("paste_back");
  const keyInput = $("api-key");
  const jobBox = $("job");
  const stage = $("stage");
  const bar = $("progress");
  const percent = $("percent");
  const frames = $("frames");
  const estimate = $("estimate");
  const jobWarning = $("job-warning");
  const resultLength = $("result-length");
  const cancelButton = $("cancel");
  const errorBox = $("error");
  const resultBox = $("result");
  const resultVideo = $("result-video");
  const download = $("download");
  const drivingZone = $("driving-drop").querySelector(".drop-zone");
  const drivingHelp = $("driving-help");
  const drivingName = $("driving-name");
  const templateBox = $("template-box");
  const templateName = $("template-name");
  const templateBar = $("template-progress");
  const sideBySide = form.querySelector("input[name=layout][value=side_by_side]");
  const sideBySideNote = $("side-by-side-note");
  const keepBox = $("keep");
  const keepButton = $("keep-motion");
  const keepStatus = $("keep-status");

  // What is going on now; `run` changes on every submit so a late answer of an older job
  // never touches the page.
  let run = 0;
  let jobId = null;
  let jobLinks = null;
  let uploadAbort = null;
  let pollTimer = null;
  let eventsAbort = null;
  const objectUrls = { source: null, driving: null, result: null };
  // What is wrong with a chosen file, as far as the browser can tell: "swapped" (a video
  // as the photo, a picture as the video) or "unreadable" (no preview of a photo).
  const fileProblem = { source: null, driving: null };
  // The furthest the bar has shown for this job: the stages' spans never let it go back.
  let shownFraction = 0;
  // The kept motion the next photos are animated with: {id, name, seconds, status,
  // fraction} (status as the API's; only a "finished" one is sent), or null: a video.
  let template = null;
  // Changes whenever the template changes, so a late answer about an older one is dropped.
  let templateRun = 0;
  let templateTimer = null;
  // The driving video the shown result was made from (null: made from a template), and
  // how it was framed (a template keeps its video's framing).
  let jobDriving = null;
  let jobCrop = "auto";

  // Where each stage's frames fill the bar (cropping counts frames too, before animating).
  const STAGE_SPANS = {
    probing: [0, 0.02],
    cropping: [0.02, 0.1],
    animating: [0.1, 0.97],
    encoding: [0.97, 1],
    done: [1, 1],
  };

  // stage -> what it does, as the API lists them (GET stages)
  const STAGES = {};
  fetch("stages")
    .then((response) => (response.ok ? response.json() : []))
    .then((list) => list.forEach((item) => { STAGES[item.stage] = item.label + "…"; }))
    .catch(() => {}); // the page still shows "Working…"

  // untrained demo weights: say so before the user sees the result (GET readyz)
  fetch("readyz", { cache: "no-store" })
    .then((response) => response.json())
    .then((ready) => { document.getElementById("demo-banner").hidden = !ready.demo; })
    .catch(() => {}); // no banner when the service cannot tell

  // ---------- state ----------

  function setState(state) {
    app.dataset.state = state;
    const busy = state === "uploading" || state === "running" || state === "canceling";
    form.querySelectorAll("input, select, button").forEach((el) => {
      if (el !== keyInput) el.disabled = busy;
    });
    if (!busy) updateForm();
    else submitHelp.textContent = "Working on it; follow the progress below.";
    if (state === "finished") submitHelp.textContent = "Done: your animation is below.";
    form.setAttribute("aria-busy", busy ? "true" : "false");
    jobBox.hidden = !(busy || state === "finished");
    cancelButton.hidden = !busy;
    cancelButton.disabled = state === "canceling";
    resultBox.hidden = state !== "finished";
    errorBox.hidden = state !== "error";
  }

  function readyState() {
    return sourceInput.files.length && (drivingInput.files.length || templateReady())
      ? "ready" : "empty";
  }

  function templateReady() {
    return template !== null && template.status === "finished";
  }

  function updateForm() {
    const crop = form.elements.crop.value;
    pasteBack.disabled = crop === "none";
    if (crop === "none") pasteBack.checked = false;
    // side_by_side shows the driving video's pictures, which a template does not keep
    sideBySide.disabled = template !== null;
    sideBySideNote.hidden = template === null;
    if (template !== null && sideBySide.checked) form.elements.layout.value = "result";
    const haveSource = sourceInput.files.length > 0;
    const haveDriving = template === null ? drivingInput.files.length > 0 : templateReady();
    const drivingProblem = template === null ? fileProblem.driving : null;
    const swapped = fileProblem.source === "swapped" || drivingProblem === "swapped";
    submitButton.disabled = !(haveSource && haveDriving) || swapped;
    if (template !== null && !templateReady() && !swapped) {
      submitHelp.textContent = "The motion is being kept; Animate works once it is ready.";
    } else if (fileProblem.source === "swapped" && drivingProblem === "swapped") {
      submitHelp.textContent = "The photo and the video are swapped: put the photo in the " +
        "first box and the video in the second.";
    } else if (fileProblem.source === "swapped") {
      submitHelp.textContent = "The photo box holds a video: choose a JPEG, PNG or WebP picture.";
    } else if (drivingProblem === "swapped") {
      submitHelp.textContent = "The video box holds a picture: choose a video of a talking face.";
    } else if (fileProblem.source === "unreadable") {
      submitHelp.textContent = "The photo does not look like a JPEG, PNG or WebP picture: " +
        "choose another one (the service will refuse it).";
    } else if (haveSource && haveDriving) submitHelp.textContent = "Ready to animate.";
    else if (haveSource) submitHelp.textContent = "Now choose a driving video.";
    else if (haveDriving) {
      submitHelp.textContent = template === null ? "Now choose a photo."
        : "Now choose a photo: it moves like the kept motion.";
    }
    else submitHelp.textContent = "Choose a photo and a video first.";
  }

  // ---------- files and previews ----------

  function humanSize(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  function showFile(which) {
    const input = which === "source" ? sourceInput : drivingInput;
    const preview = which === "source" ? sourcePreview : drivingPreview;
    const name = $(which + "-name");
    const zone = $(which + "-drop");
    if (objectUrls[which]) URL.revokeObjectURL(objectUrls[which]);
    objectUrls[which] = null;
    const file = input.files[0];
    fileProblem[which] = null;
    if (!file) {
      preview.hidden = true;
      preview.removeAttribute("src");
      name.textContent = "";
      zone.classList.remove("has-file", "no-preview");
      return;
    }
    zone.classList.add("has-file");
    zone.classList.remove("no-preview");
    name.classList.remove("warning");
    name.textContent = file.name + " · " + humanSize(file.size);
    const kind = (file.type || "").split("/")[0];
    if ((which === "source" && kind === "video") || (which === "driving" && kind === "image")) {
      fileProblem[which] = "swapped";
      name.classList.add("warning");
      name.textContent = file.name + " · " + humanSize(file.size) +
        (which === "source" ? " · this is a video, not a photo" : " · this is a picture, not a video");
      preview.hidden = true;
      preview.removeAttribute("src");
      zone.classList.add("no-preview");
      return;
    }
    objectUrls[which] = URL.createObjectURL(file);
    preview.onerror = () => {
      if (input.files[0] !== file) return; // a newer file replaced this one
      preview.hidden = true;
      zone.classList.add("no-preview");
      if (which === "source") {
        // Every browser shows JPEG, PNG and WebP: this is probably not one of them.
        fileProblem.source = "unreadable";
        name.classList.add("warning");
        name.textContent = file.name + " · " + humanSize(file.size) +
          " · this does not look like a JPEG, PNG or WebP picture";
        if (app.dataset.state === "empty" || app.dataset.state === "ready") updateForm();
      } else {
        name.textContent = file.name + " · " + humanSize(file.size) +
          " · no preview in this browser (it is still sent)";
      }
    };
    preview.src = objectUrls[which];
    preview.hidden = false;
    if (which === "driving") {
      preview.play().catch(() => { /* a preview that cannot autoplay stays still */ });
    }
  }

  function onFileChange(which) {
    showFile(which);
    if (app.dataset.state === "empty" || app.dataset.state === "ready") {
      setState(readyState());
    } else {
      updateForm();
    }
  }

  function wireDrop(which) {
    const input = which === "source" ? sourceInput : drivingInput;
    const zone = $(which + "-drop").querySelector(".drop-zone");
    input.addEventListener("change", () => onFileChange(which));
    ["dragenter", "dragover"].forEach((type) =>
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("dragging");
      }));
    ["dragleave", "dragend"].forEach((type) =>
      zone.addEventListener(type, () => zone.classList.remove("dragging")));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (input.disabled || !event.dataTransfer || !event.dataTransfer.files.length) return;
      const transfer = new DataTransfer();
      transfer.items.add(event.dataTransfer.files[0]);
      input.files = transfer.files;
      onFileChange(which);
    });
  }

  // A file dropped beside a zone must not replace the page with the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  // ---------- requests ----------

  function headers() {
    const key = keyInput.value.trim();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  async function readDetail(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) {
        return body.detail.map((item) => item.msg || JSON.stringify(item)).join("; ");
      }
    } catch (_) {
      // Not JSON: a proxy's page; the status says enough.
    }
    return "";
  }

  // Shows the API's error for a failed response, in words and with its detail.
  async function showResponseError(response) {
    const detail = await readDetail(response);
    showError(explain(response.status, detail), detail);
  }

  // A sentence for a person, from an HTTP status and the API's `detail`.
  function explain(status, detail) {
    switch (status) {
      case 400:
        return "The upload did not arrive complete. Please try again.";
      case 401:
      case 403:
        keyInput.closest("details").open = true;
        return keyInput.value.trim()
          ? "This API key was not accepted. Check it under “More options”."
          : "This service needs an API key. Paste it under “More options”, then try again.";
      case 404:
        return "This job no longer exists; results are kept for a limited time.";
      case 413:
        if (/photo|source/i.test(detail)) {
          return "The photo is too large for this service. Use a smaller picture.";
        }
        if (/video|driving/i.test(detail)) {
          return "The video is too large or too long for this service. " +
            "Use a shorter or smaller video.";
        }
        return "The files are too large for this service. Use a shorter video or a " +
          "smaller photo.";
      case 415:
        if (/photo|source/i.test(detail)) {
          return "This photo cannot be used. Choose a JPEG, PNG or WebP picture.";
        }
        if (/video|driving/i.test(detail)) {
          return "This video cannot be used. Choose an MP4, MOV, WebM, MKV, AVI or GIF file.";
        }
        return "One of the files cannot be used. The photo must be a JPEG, PNG or WebP " +
          "picture and the video an MP4, MOV, WebM, MKV, AVI or GIF.";
      case 422:
        if (/no face/i.test(detail)) return failedJobMessage(detail);
        return "Something in the request is not valid. Check the files and options.";
      case 429:
      case 503:
        return "The service is busy or starting up. Please try again in a moment.";
      default:
        return status >= 500
          ? "The service had a problem. Please try again later."
          : "The request was refused (" + status + ").";
    }
  }

  // `otherwise`: the sentence for any other failure.
  function failedJobMessage(error, otherwise) {
    const text = error || "";
    if (/no face/i.test(text)) {
      return /driving/i.test(text)
        ? "No face was found in the video. Use a video where one face is clearly visible."
        : "No face was found in the photo. Use a photo where one face is clearly visible.";
    }
    if (/too (large|long|many)|limit/i.test(text)) {
      return "The input is over a limit of this service.";
    }
    if (/time ?out|timed out/i.test(text)) {
      return "The animation took too long and was stopped.";
    }
    return otherwise === undefined ? "The animation could not be made." : otherwise;
  }

  function showError(message, detail) {
    stopPolling();
    $("error-message").textContent = message;
    const shown = detail && detail !== message ? detail : "";
    $("error-detail").textContent = shown;
    $("error-detail").hidden = !shown;
    setState("error");
    errorBox.focus({ preventScroll: true });
    reveal(errorBox, "start");
  }

  function reveal(element, block) {
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    element.scrollIntoView({ block: block, behavior: still ? "auto" : "smooth" });
  }

  // ---------- submit and follow ----------

  function formData() {
    const data = new FormData();
    const crop = form.elements.crop.value;
    data.append("source", sourceInput.files[0]);
    if (templateReady()) data.append("template", template.id);
    else data.append("driving", drivingInput.files[0]);
    data.append("motion", form.elements.motion.value);
    data.append("crop", crop);
    if (crop === "auto") data.append("paste_back", pasteBack.checked ? "true" : "false");
    data.append("layout", form.elements.layout.value);
    data.append("audio", $("audio").checked ? "true" : "false");
    data.append("adapt_scale", $("adapt_scale").checked ? "true" : "false");
    data.append("best_frame", $("best_frame").value);
    const seed = $("seed").value.trim();
    if (seed !== "") data.append("seed", seed);
    return data;
  }

  async function submit(event) {
    event.preventDefault();
    if (readyState() !== "ready") return;
    const mine = ++run;
    const data = formData();
    const sentTemplate = templateReady() ? template : null;
    jobDriving = sentTemplate ? null : drivingInput.files[0];
    jobCrop = form.elements.crop.value;
    jobId = null;
    jobLinks = null;
    shownFraction = 0;
    showEstimate(null);
    jobWarning.textContent = "";
    jobWarning.hidden = true;
    showProgress({ stage: "uploading", frames_done: 0, frames_total: 0 }, "queued");
    setState("uploading");
    reveal(jobBox, "nearest");
    uploadAbort = new AbortController();
    let response;
    try {
      response = await fetch("animate", {
        method: "POST",
        body: data,
        headers: headers(),
        signal: uploadAbort.signal,
      });
    } catch (err) {
      if (mine !== run) return;
      if (err.name === "AbortError") {
        setState(readyState());
        return;
      }
      showError("The service cannot be reached. Check your connection and try again.", "");
      return;
    } finally {
      uploadAbort = null;
    }
    if (mine !== run) return;
    if (response.status !== 202) {
      if (sentTemplate && (response.status === 404 || response.status === 409)) {
        await showTemplateRefused(response, sentTemplate);
      } else {
        await showResponseError(response);
      }
      return;
    }
    let body;
    try {
      body = await response.json();
    } catch (_) {
      showError("The service gave an answer this page does not understand.", "");
      return;
    }
    jobId = body.id;
    jobLinks = body.links || {};
    app.dataset.jobId = jobId;
    setState("running");
    showProgress({ stage: "queued", frames_done: 0, frames_total: 0 }, "queued");
    showEstimate(body.estimated_seconds);
    const warnings = Array.isArray(body.warnings) ? body.warnings : [];
    jobWarning.textContent = warnings.join(" ");
    jobWarning.hidden = warnings.length === 0;
    listen(mine);
  }

  // Server-Sent Events read with fetch (an EventSource cannot send the API key); any
  // failure of the stream falls back to polling.
  async function listen(mine) {
    stopPolling();
    const url = (jobLinks && jobLinks.events) || statusUrl() + "/events";
    const abort = new AbortController();
    eventsAbort = abort;
    let ended = false;
    try {
      const response = await fetch(url, {
        headers: { ...headers(), Accept: "text/event-stream" },
        cache: "no-store",
        signal: abort.signal,
      });
      if (!response.ok || !response.body) throw new Error("no event stream");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while (!ended && (cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart()).join("\n");
          if (!data || mine !== run) continue;
          ended = await showJob(mine, JSON.parse(data));
        }
      }
    } catch (_) {
      // aborted by the page, or the stream broke: polling takes over below
    }
    if (eventsAbort === abort) eventsAbort = null;
    if (!ended && mine === run && !abort.signal.aborted) poll(mine, POLL_MS, 0);
  }

  function statusUrl() {
    return (jobLinks && jobLinks.self) || "jobs/" + encodeURIComponent(jobId);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
    if (eventsAbort) eventsAbort.abort();
    eventsAbort = null;
  }

  function poll(mine, delay, failures) {
    stopPolling();
    pollTimer = setTimeout(() => check(mine, failures), delay);
  }

  async function check(mine, failures) {
    let response;
    try {
      response = await fetch(statusUrl(), { headers: headers(), cache: "no-store" });
    } catch (_) {
      if (mine !== run) return;
      if (failures >= 8) {
        showError("Lost contact with the service while the job was running.", "");
        return;
      }
      stage.textContent = "Reconnecting…";
      poll(mine, Math.min(POLL_MAX_MS, POLL_MS * 2 ** (failures + 1)), failures + 1);
      return;
    }
    if (mine !== run) return;
    if (!response.ok) {
      await showResponseError(response);
      return;
    }
    const job = await response.json();
    if (mine !== run) return;
    if (!(await showJob(mine, job))) poll(mine, POLL_MS, 0);
  }

  // Show a job's state; true when it has ended.
  async function showJob(mine, job) {
    showProgress(job.progress || {}, job.status, job.queue_position);
    showEstimate(job.status === "queued" || job.status === "started" ? job.estimated_seconds : null);
    if (job.status === "finished") {
      await finish(mine, job);
    } else if (job.status === "failed") {
      showError(failedJobMessage(job.error), job.error || "");
    } else if (job.status === "canceled") {
      stopPolling();
      setState(readyState());
      submitHelp.textContent = "The job was canceled.";
    } else {
      return false;
    }
    return true;
  }

  // "About 2 h 10 min left": the API's estimate (seconds), or nothing without one.
  function showEstimate(seconds) {
    const known = typeof seconds === "number" && isFinite(seconds) && seconds >= 0;
    estimate.hidden = !known;
    estimate.textContent = known ? "About " + humanDuration(seconds) + " left" : "";
  }

  function humanDuration(seconds) {
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min";
    const rest = minutes % 60;
    return Math.floor(minutes / 60) + " h" + (rest ? " " + rest + " min" : "");
  }

  // How far the whole job is (0 to 1): each stage fills its span of the bar with its frames.
  function jobFraction(progress, status) {
    if (status === "finished") return 1;
    const span = STAGE_SPANS[progress.stage];
    if (!span) return 0;
    const done = progress.frames_done || 0;
    const total = progress.frames_total || 0;
    const within = total > 0 ? Math.min(1, done / total) : 0;
    return span[0] + (span[1] - span[0]) * within;
  }

  function showProgress(progress, status, queuePosition) {
    const done = progress.frames_done || 0;
    const total = progress.frames_total || 0;
    shownFraction = Math.max(shownFraction, jobFraction(progress, status));
    const fraction = shownFraction;
    const name = status === "queued" ? "queued" : progress.stage;
    let text;
    if (progress.stage === "uploading") text = "Uploading your files…";
    else if (status === "finished") text = "Done.";
    else if (name === "animating" && total > 0 && done > 0) {
      text = "Animating frame " + done + " of " + total + "…";
    } else if (name === "queued" && queuePosition) {
      text = queuePosition === 1 ? "Next in the queue…" : "Waiting: number " + queuePosition + " in the queue…";
    } else text = STAGES[name] || "Working…";
    stage.textContent = text;
    app.dataset.stage = progress.stage === "uploading" ? "uploading" : (name || "");
    if (progress.stage === "uploading" || (status === "queued" && done === 0)) {
      bar.removeAttribute("value"); // indeterminate while nothing is countable
      percent.textContent = "";
    } else {
      bar.value = Math.round(fraction * 100);
      percent.textContent = Math.round(fraction * 100) + "%";
    }
    const counted = name === "animating" || name === "encoding" || name === "done" ||
      status === "finished";
    frames.textContent = counted && total > 0 ? done + " / " + total + " frames" : "";
  }

  async function finish(mine, job) {
    stopPolling();
    const url = job.result_url || (jobLinks && jobLinks.result) ||
      "jobs/" + encodeURIComponent(jobId) + "/result";
    if (objectUrls.result) URL.revokeObjectURL(objectUrls.result);
    objectUrls.result = null;
    let src = url;
    if (keyInput.value.trim()) {
      // A <video> cannot send an Authorization header: fetch the MP4 with the key and play
      // it from memory (seeking works on a blob as well).
      let response;
      try {
        response = await fetch(url, { headers: headers() });
      } catch (_) {
        if (mine === run) showError("The result could not be downloaded. Try again.", "");
        return;
      }
      if (mine !== run) return;
      if (!response.ok) {
        await showResponseError(response);
        return;
      }
      objectUrls.result = URL.createObjectURL(await response.blob());
      src = objectUrls.result;
    }
    if (mine !== run) return;
    resultVideo.src = src;
    download.href = src;
    download.download = "animation-" + jobId.slice(0, 8) + ".mp4";
    keepBox.hidden = !jobDriving || template !== null;
    keepButton.disabled = false;
    keepSaying("", false);
    setState("finished");
    reveal(resultBox, "start");
  }

  async function cancel() {
    if (uploadAbort) {
      run++;
      uploadAbort.abort();
      setState(readyState());
      submitHelp.textContent = "The upload was canceled.";
      return;
    }
    if (!jobId) return;
    const mine = run;
    setState("canceling");
    stage.textContent = "Canceling…";
    let response;
    try {
      response = await fetch(statusUrl(), { method: "DELETE", headers: headers() });
    } catch (_) {
      if (mine === run) {
        setState("running");
        stage.textContent = "The cancel request did not reach the service; try again.";
      }
      return;
    }
    if (mine !== run) return;
    if (response.status === 409) {
      // It ended meanwhile: the next check shows how.
      setState("running");
      poll(mine, 0, 0);
      return;
    }
    if (!response.ok) {
      await showResponseError(response);
      return;
    }
    run++;
    stopPolling();
    setState(readyState());
    submitHelp.textContent = "The job was canceled.";
  }

  // The player's own clock reads 0:00 for a clip under a second: say how long it is.
  resultVideo.addEventListener("loadedmetadata", () => {
    const seconds = resultVideo.duration;
    if (!isFinite(seconds)) {
      resultLength.textContent = "";
      return;
    }
    const whole = Math.round(seconds);
    const text = seconds < 60 ? seconds.toFixed(1) + " s"
      : Math.floor(whole / 60) + " min " + String(whole % 60).padStart(2, "0") + " s";
    resultLength.textContent = "Length: " + text;
  });

  function reset(keepFiles) {
    run++;
    stopPolling();
    jobId = null;
    delete app.dataset.jobId;
    delete app.dataset.stage;
    resultVideo.removeAttribute("src");
    resultVideo.load();
    resultLength.textContent = "";
    if (!keepFiles) {
      const key = keyInput.value;
      form.reset();
      keyInput.value = key;
      showFile("source");
      showFile("driving");
    }
    setState(readyState());
  }

  // ---------- the kept motion (template) ----------

  function templateUrl(id) {
    return "templates/" + encodeURIComponent(id);
  }

  function rememberTemplate() {
    try {
      if (template === null) localStorage.removeItem(TEMPLATE_STORE);
      else {
        localStorage.setItem(TEMPLATE_STORE, JSON.stringify({
          id: template.id, name: template.name, seconds: template.seconds,
          status: template.status,
        }));
      }
    } catch (_) {
      // Storage blocked: the motion is kept for this visit only.
    }
  }

  function storedTemplate() {
    try {
      const stored = JSON.parse(localStorage.getItem(TEMPLATE_STORE) || "null");
      if (stored && typeof stored.id === "string" && stored.id) {
        return {
          id: stored.id,
          name: typeof stored.name === "string" ? stored.name : "the video",
          seconds: typeof stored.seconds === "number" ? stored.seconds : null,
          // usable at once when it was made; the look-up below forgets it if it is gone
          status: stored.status === "finished" ? "finished" : "started",
          fraction: 0,
        };
      }
    } catch (_) {
      // Unreadable or blocked: nothing remembered.
    }
    return null;
  }

  function setTemplate(value) {
    templateRun++;
    if (templateTimer) clearTimeout(templateTimer);
    templateTimer = null;
    template = value;
    rememberTemplate();
    showTemplate();
  }

  // The driving picker: the video's drop zone, or the kept motion with its state.
  function showTemplate() {
    const using = template !== null;
    drivingZone.hidden = using;
    drivingHelp.hidden = using;
    drivingName.hidden = using;
    templateBox.hidden = !using;
    app.dataset.template = using ? (templateReady() ? "ready" : "making") : "";
    if (using) {
      const percent = Math.round((template.fraction || 0) * 100);
      if (templateReady()) {
        const length = typeof template.seconds === "number"
          ? ", " + template.seconds.toFixed(1) + " s" : "";
        templateName.textContent = "Motion: " + template.name + " (template" + length + ")";
      } else {
        templateName.textContent = "Motion: " + template.name + " (template being made, " +
          percent + "%)";
      }
      templateBar.hidden = templateReady();
      templateBar.value = percent;
    }
    const state = app.dataset.state;
    if (state === "empty" || state === "ready") setState(readyState());
    else if (state !== "uploading" && state !== "running" && state !== "canceling") updateForm();
  }

  function keepSaying(text, warning) {
    keepStatus.textContent = text;
    keepStatus.classList.toggle("warning", Boolean(warning));
  }

  // The template is gone or could not be made: back to choosing a video, saying why
  // (beside the result if it shows, else where the video is chosen).
  function forgetTemplate(message) {
    setTemplate(null);
    keepSaying(message, true);
    if (!drivingInput.files.length) {
      drivingName.textContent = message;
      drivingName.classList.add("warning");
    }
  }

  // POST /templates with the driving video the page still holds.
  async function keepMotion() {
    const file = jobDriving;
    if (!file) return;
    keepButton.disabled = true;
    keepSaying("Keeping the motion: uploading the video…", false);
    const data = new FormData();
    data.append("driving", file);
    data.append("crop", jobCrop);
    const mine = ++templateRun;
    let response;
    try {
      response = await fetch("templates", { method: "POST", body: data, headers: headers() });
    } catch (_) {
      if (mine !== templateRun) return;
      keepButton.disabled = false;
      keepSaying("The service cannot be reached. Check your connection and try again.", true);
      return;
    }
    if (mine !== templateRun) return;
    if (response.status !== 202) {
      const detail = await readDetail(response);
      keepButton.disabled = false;
      const message = response.status === 429 && /template/i.test(detail)
        ? "This key keeps as many motions as it may."
        : explain(response.status, detail);
      keepSaying("The motion could not be kept. " + message +
        (detail && detail !== message ? " (" + detail + ")" : ""), true);
      return;
    }
    let body;
    try {
      body = await response.json();
    } catch (_) {
      keepButton.disabled = false;
      keepSaying("The service gave an answer this page does not understand.", true);
      return;
    }
    setTemplate({ id: body.id, name: file.name, seconds: null, status: body.status, fraction: 0 });
    keepSaying("Keeping the motion: 0%…", false);
    keepBox.hidden = true;
    keepStatus.focus({ preventScroll: true }); // the button it replaces had the focus
    followTemplate(templateRun, 0);
  }

  // Poll GET /templates/{id} until the template is made (or gone).
  function followTemplate(mine, failures) {
    const delay = failures ? Math.min(POLL_MAX_MS, POLL_MS * 2 ** failures) : POLL_MS;
    templateTimer = setTimeout(() => checkTemplate(mine, failures), delay);
  }

  async function checkTemplate(mine, failures) {
    if (mine !== templateRun || template === null) return;
    let response;
    try {
      response = await fetch(templateUrl(template.id), { headers: headers(), cache: "no-store" });
    } catch (_) {
      if (mine !== templateRun) return;
      if (failures >= 8) {
        keepSaying("Lost contact with the service while the motion was being kept. " +
          "Reload the page to look again.", true);
        return;
      }
      followTemplate(mine, failures + 1);
      return;
    }
    if (mine !== templateRun) return;
    if (response.status === 404) {
      forgetTemplate("The kept motion of " + template.name + " is gone (motions are kept " +
        "for a limited time): choose the driving video again.");
      return;
    }
    if (!response.ok) {
      // 401 (a key this tab does not have yet), 429, 503: look again later
      if (template.status !== "finished") followTemplate(mine, Math.min(failures + 1, 3));
      return;
    }
    let body;
    try {
      body = await response.json();
    } catch (_) {
      body = null; // a proxy's page: look again later
    }
    if (mine !== templateRun) return;
    if (body === null) {
      followTemplate(mine, Math.min(failures + 1, 3));
      return;
    }
    if (body.status === "failed" || body.status === "canceled") {
      const why = body.status === "failed"
        ? failedJobMessage(body.error, "Choose the driving video again.") : "It was canceled.";
      forgetTemplate("The motion of " + template.name + " could not be kept. " + why +
        (body.error ? " (" + body.error + ")" : ""));
      return;
    }
    const progress = body.progress || {};
    template.status = body.status;
    template.fraction = Math.max(template.fraction || 0, jobFraction(progress, body.status));
    if (body.status === "finished") {
      template.seconds = body.duration_seconds;
      rememberTemplate();
      keepSaying("Motion kept: the next photos move like " + template.name + " without " +
        "uploading it again.", false);
    } else {
      keepSaying("Keeping the motion: " + Math.round(template.fraction * 100) + "%…", false);
      followTemplate(mine, 0);
    }
    showTemplate();
  }

  // POST /animate refused the template: gone (404) or not usable yet (409).
  async function showTemplateRefused(response, sent) {
    const detail = await readDetail(response);
    if (response.status === 404 || /fail/i.test(detail)) {
      if (template !== null && template.id === sent.id) setTemplate(null);
      keepSaying("", false);
      showError("The kept motion of " + sent.name + " can no longer be used (motions are " +
        "kept for a limited time). Choose the driving video again.", detail);
    } else {
      showError("The kept motion is still being made. Try again once it is ready.", detail);
    }
  }

  // ---------- wiring ----------

  wireDrop("source");
  wireDrop("driving");
  form.addEventListener("change", (event) => {
    if (event.target.name === "crop") updateForm();
  });
  form.addEventListener("submit", submit);
  cancelButton.addEventListener("click", cancel);
  document.querySelector("[data-action=retry]").addEventListener("click", () => {
    reset(true);
    submitButton.focus();
  });
  document.querySelector("[data-action=again]").addEventListener("click", () => reset(false));
  keepButton.addEventListener("click", keepMotion);
  $("template-off").addEventListener("click", () => {
    setTemplate(null);
    keepSaying("", false);
    drivingInput.focus();
  });
  try {
    keyInput.value = sessionStorage.getItem(KEY_STORE) || "";
    keyInput.addEventListener("change", () =>
      sessionStorage.setItem(KEY_STORE, keyInput.value.trim()));
  } catch (_) {
    // Storage blocked (private mode): the key is simply not remembered.
  }
  // A reload keeps chosen files in some browsers: show them.
  showFile("source");
  showFile("driving");
  setState(readyState());
  // A motion kept on an earlier visit: shown at once, then looked up (forgotten on a 404).
  const remembered = storedTemplate();
  if (remembered !== null) {
    template = remembered;
    showTemplate();
    checkTemplate(templateRun, 0);
  }
})();
