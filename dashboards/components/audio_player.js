// FMA audio player: an HTML5 <audio> that reports what the listener does to Python.
//
// Streamlit components v2 calls this function on mount and again when `data` changes.
// One player per component key lives in `window.__fmaPlayers`, so a rerun re-attaches
// the same <audio> element (playback continues) instead of creating a new one.
// Reports go out as the state value `log`: the last LOG_SIZE reports, each with a unique
// id, so Python handles every report exactly once even if several arrive between reruns.
// A play (one server token) reports `play` once (a resume is not a new play) and nothing
// after its `complete` or `skip`; the server checks every report anyway and takes the
// track's duration from its catalogue, so none is sent.
const LOG_SIZE = 30;
const MAX_TICK_S = 1.5; // a larger jump of currentTime is a seek, not listening

function newId() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");
}

function createPlayer() {
  const container = document.createElement("div");
  container.className = "fma-player";
  container.innerHTML = `
    <div class="fma-title" data-testid="fma-player-title"></div>
    <audio controls preload="auto" data-testid="fma-player-audio"></audio>
    <div class="fma-row">
      <button type="button" class="fma-next" data-testid="fma-player-next" title="Skip to the next track">Skip &rsaquo;&rsaquo;</button>
      <span class="fma-status" data-testid="fma-player-status"></span>
    </div>`;
  const player = {
    container,
    audio: container.querySelector("audio"),
    title: container.querySelector(".fma-title"),
    status: container.querySelector(".fma-status"),
    log: [],
    current: null, // {token, track_id}
    started: false, // this play's `play` was reported
    finished: false, // this play's `complete` or `skip` was reported
    listened: 0,
    lastTime: 0,
    lastProgressAt: 0,
    progressEvery: 10,
    setStateValue: null,
  };
  wire(player);
  return player;
}

function report(player, type) {
  if (!player.current || !player.setStateValue || player.finished) return;
  if (type === "play") {
    if (player.started) return;
    player.started = true;
  }
  if (type === "complete" || type === "skip") player.finished = true;
  player.log = player.log.concat([{
    id: newId(), type, token: player.current.token, track_id: player.current.track_id,
    position: player.audio.currentTime || 0, listened: player.listened,
  }]).slice(-LOG_SIZE);
  player.status.textContent = `${type} at ${(player.audio.currentTime || 0).toFixed(1)} s`;
  player.setStateValue("log", player.log);
}

function wire(player) {
  const audio = player.audio;
  audio.addEventListener("play", () => report(player, "play"));
  audio.addEventListener("pause", () => { if (!audio.ended) report(player, "pause"); });
  audio.addEventListener("ended", () => report(player, "complete"));
  audio.addEventListener("timeupdate", () => {
    const step = audio.currentTime - player.lastTime;
    player.lastTime = audio.currentTime;
    if (audio.paused || step <= 0 || step > MAX_TICK_S) return;
    player.listened += step;
    if (player.listened - player.lastProgressAt >= player.progressEvery) {
      player.lastProgressAt = player.listened;
      report(player, "progress");
    }
  });
  audio.addEventListener("seeked", () => { player.lastTime = audio.currentTime; });
  player.container.querySelector(".fma-next").addEventListener("click", () => {
    if (!audio.ended) {
      audio.pause();
      report(player, "skip");
    }
  });
}

function load(player, data) {
  player.progressEvery = data.progress_every_s || 10;
  if (player.current && player.current.token === data.token) return; // same play: keep going
  player.current = { token: data.token, track_id: data.track_id };
  player.started = false;
  player.finished = false;
  player.listened = 0;
  player.lastTime = 0;
  player.lastProgressAt = 0;
  player.title.textContent = data.title || "";
  player.status.textContent = "";
  player.audio.src = data.src;
  if (data.autoplay) {
    player.audio.play().catch((error) => {
      player.status.textContent = `press play to start (${error.name})`;
    });
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data || !data.src) return undefined;
  const registry = (window.__fmaPlayers = window.__fmaPlayers || {});
  let player = registry[data.key];
  if (!player) {
    player = registry[data.key] = createPlayer();
  }
  player.setStateValue = setStateValue;
  if (player.container.parentNode !== parentElement) parentElement.appendChild(player.container);
  load(player, data);
  return undefined;
}
