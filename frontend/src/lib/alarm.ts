// The audible alarm: a short two-tone beep through WebAudio (no sound file to ship).

let context: AudioContext | null = null;

/** Beeps; must first be called from a user gesture (browsers keep audio locked until then). */
export function beep(): void {
  try {
    context ??= new AudioContext();
    const ctx = context;
    void ctx.resume();
    [880, 660].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const start = ctx.currentTime + i * 0.25;
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.15, start);
      gain.gain.exponentialRampToValueAtTime(0.001, start + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.23);
    });
  } catch {
    // No audio device (a wall screen without speakers): the visual alarm still works.
  }
}
