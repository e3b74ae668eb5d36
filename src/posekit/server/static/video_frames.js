// Frame pictures of the video view. Each frame's JPEG is fetched once, at the size
// the view shows it (the server scales it down: a 1080p frame drawn 900 px wide
// need not be encoded, sent and decoded at 1920), kept as a Blob in a cache bounded
// in bytes, and decoded off the main thread (createImageBitmap).
//
// A prefetcher fills the cache around the current frame whenever nothing else is
// loading, one request at a time, in decode order: forward from the current frame
// (the server's decoder then continues instead of seeking back to a keyframe), then
// a stretch before it, then the rest of the video, until the byte budget is spent.
// Seeks, steps back and playback then find their frame here; a seek outside the
// covered stretch costs one server decode, as before.

const AHEAD = 900; // frames after the current one, first
const BEHIND = 300; // then frames before it
// Prefetching resumes this long after the last frame shown: while someone seeks
// quickly, a prefetch request in flight would only delay their next frame.
const IDLE_MS = 150;

export class FrameStore {
  /**
   * @param {(i: number) => string} urlFor URL of frame i's JPEG
   * @param {number} frameCount
   * @param {{budgetBytes?: number, prefetch?: boolean}} options
   */
  constructor(urlFor, frameCount, { budgetBytes = 160 * 2 ** 20, prefetch = true } = {}) {
    this.urlFor = urlFor;
    this.count = frameCount;
    this.budget = budgetBytes;
    this.prefetching = prefetch;
    this.blobs = new Map(); // frame -> Blob
    this.bytes = 0;
    this.loading = new Map(); // frame -> Promise<Blob>
    this.busy = 0; // foreground loads in flight: the prefetcher waits for them
    this.center = 0;
    this.alive = true;
    this.running = false;
    this.failed = new Set();
    this.stats = { fetched: 0, prefetched: 0, hits: 0 };
    this.lastShown = 0;
    this.idleTimer = null;
  }

  /** The decoded picture of frame i (an ImageBitmap; the caller closes it). */
  async bitmap(i) {
    this.busy++;
    try {
      const blob = await this.blob(i, false);
      return await createImageBitmap(blob);
    } finally {
      this.busy--;
      this.lastShown = performance.now();
      this.kick();
    }
  }

  has(i) {
    return this.blobs.has(i);
  }

  blob(i, background) {
    const hit = this.blobs.get(i);
    if (hit) {
      if (!background) this.stats.hits++;
      return Promise.resolve(hit);
    }
    let pending = this.loading.get(i);
    if (!pending) {
      pending = this.fetch(i, background).finally(() => this.loading.delete(i));
      this.loading.set(i, pending);
    }
    return pending;
  }

  async fetch(i, background) {
    const response = await fetch(this.urlFor(i), { credentials: "same-origin" });
    if (!response.ok) throw new Error(`frame ${i}: ${response.status} ${response.statusText}`);
    const blob = await response.blob();
    this.stats[background ? "prefetched" : "fetched"]++;
    if (this.alive) this.put(i, blob);
    return blob;
  }

  put(i, blob) {
    if (this.blobs.has(i)) return;
    this.blobs.set(i, blob);
    this.bytes += blob.size;
    while (this.bytes > this.budget && this.blobs.size > 1) {
      const worst = this.worst(i);
      if (worst === null) break;
      this.drop(worst);
    }
  }

  drop(i) {
    const blob = this.blobs.get(i);
    if (!blob) return;
    this.blobs.delete(i);
    this.bytes -= blob.size;
  }

  /** Order of prefetching around the center (0 is the center; lower comes first). */
  rank(i) {
    const d = i - this.center;
    if (d === 0) return 0;
    if (d > 0 && d <= AHEAD) return d;
    if (d < 0 && d >= -BEHIND) return AHEAD + BEHIND + d + 1;
    if (d > AHEAD) return AHEAD + BEHIND + d;
    return AHEAD + BEHIND + this.count + i;
  }

  /** The cached frame with the highest rank, other than `keep`. */
  worst(keep) {
    let worst = null;
    let rank = -1;
    for (const j of this.blobs.keys()) {
      if (j === keep) continue;
      const r = this.rank(j);
      if (r > rank) [worst, rank] = [j, r];
    }
    return worst;
  }

  /** The next frame to prefetch, or null when the budget is spent on better ones. */
  next() {
    const c = this.center;
    const ranges = [
      [c + 1, Math.min(this.count - 1, c + AHEAD)],
      [Math.max(0, c - BEHIND), c - 1],
      [c + AHEAD + 1, this.count - 1],
      [0, c - BEHIND - 1],
    ];
    for (const [a, b] of ranges) {
      for (let i = a; i <= b; i++) {
        if (this.blobs.has(i) || this.loading.has(i) || this.failed.has(i)) continue;
        if (this.bytes < this.budget * 0.98) return i;
        const worst = this.worst(i);
        return worst !== null && this.rank(worst) > this.rank(i) ? i : null;
      }
    }
    return null;
  }

  /** The frame now shown: prefetching continues from here. */
  setCenter(i) {
    this.center = i;
    this.kick();
  }

  setPrefetch(on) {
    this.prefetching = on;
    this.kick();
  }

  /** Whether the prefetcher has nothing left to do (covered, or the budget spent). */
  idle() {
    return !this.running && (!this.prefetching || this.next() === null);
  }

  kick() {
    if (this.running || !this.alive || !this.prefetching || this.busy) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.running || !this.alive || !this.prefetching || this.busy) return;
      this.running = true;
      this.loop();
    }, Math.max(0, this.lastShown + IDLE_MS - performance.now()));
  }

  async loop() {
    try {
      while (this.alive && this.prefetching && !this.busy) {
        const i = this.next();
        if (i === null) break;
        try {
          await this.blob(i, true);
        } catch {
          this.failed.add(i);
        }
      }
    } finally {
      this.running = false;
    }
    if (this.alive && this.prefetching && !this.busy && this.next() !== null) this.kick();
  }

  destroy() {
    this.alive = false;
    clearTimeout(this.idleTimer);
    this.blobs.clear();
    this.bytes = 0;
  }
}
