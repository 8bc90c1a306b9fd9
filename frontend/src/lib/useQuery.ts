// Loads data for a page and keeps the last good answer when a later load fails, so a page
// never goes blank because the API hiccuped.
import { useCallback, useEffect, useEffectEvent, useState } from "react";
import { errorText } from "./client";

export interface Query<T> {
  /** The latest data for this key (undefined until the first answer arrives). */
  data: T | undefined;
  /** The last load's error message, "" when it succeeded. */
  error: string;
  loading: boolean;
  /** Loads again now. */
  reload: () => void;
}

interface Loaded<T> {
  key: string;
  data?: T;
  error: string;
  done: boolean;
}

/**
 * Calls `load` whenever `key` changes (null: do nothing), and every `refreshMs` when given.
 * The key names everything `load` depends on.
 */
export function useQuery<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>, refreshMs = 0): Query<T> {
  const [state, setState] = useState<Loaded<T>>({ key: "", error: "", done: false });
  const [tick, setTick] = useState(0);
  const run = useEffectEvent((signal: AbortSignal, forKey: string) => {
    load(signal).then(
      (data) => {
        if (!signal.aborted) setState({ key: forKey, data, error: "", done: true });
      },
      (err: unknown) => {
        if (signal.aborted) return;
        setState((s) => (s.key === forKey ? { ...s, error: errorText(err), done: true } : { key: forKey, error: errorText(err), done: true }));
      },
    );
  });

  useEffect(() => {
    if (key === null) return;
    const ctl = new AbortController();
    run(ctl.signal, key);
    const timer = refreshMs > 0 ? window.setInterval(() => run(ctl.signal, key), refreshMs) : undefined;
    return () => {
      ctl.abort();
      window.clearInterval(timer);
    };
  }, [key, tick, refreshMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const mine = state.key === key;
  return {
    data: mine ? state.data : undefined,
    error: mine ? state.error : "",
    loading: !mine || !state.done,
    reload,
  };
}
