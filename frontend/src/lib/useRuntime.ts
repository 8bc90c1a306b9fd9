// The Run page's live state: one load of /api/runtime, then changes pushed by the API over
// server-sent events (no per-card polling). The last known state is kept (and cached in the
// browser) so the page never goes empty after a beam-down, an API restart or a clean-up.
import { useEffect, useEffectEvent, useRef, useState } from "react";
import { api, errorText, ok } from "./client";
import { mergeCards, newConfirmedBad } from "./ordering";
import type { RuntimeItem } from "./types";

export type Connection = "connecting" | "live" | "reconnecting" | "offline";

const CACHE_KEY = "hydra.runtime.v1";

function readCache(): Map<string, RuntimeItem> {
  try {
    const items = JSON.parse(localStorage.getItem(CACHE_KEY) ?? "[]") as RuntimeItem[];
    // Cached cards are by definition not live.
    return new Map(items.map((c) => [c.plot_type, { ...c, stale: true }]));
  } catch {
    return new Map();
  }
}

function writeCache(cards: Map<string, RuntimeItem>): void {
  try {
    localStorage.setItem(CACHE_KEY, JSON.stringify([...cards.values()]));
  } catch {
    // Storage full or disabled: the cache is a convenience only.
  }
}

/** An SSE `runtime` event: `{full, items}` (full = a snapshot that replaces every card). */
export interface RuntimeEvent {
  full: boolean;
  items: RuntimeItem[];
}

/** Reads a `runtime` event's data; a bare list or one card counts as changes. */
export function parseRuntimeEvent(data: string): RuntimeEvent {
  const parsed: unknown = JSON.parse(data);
  let full = false;
  let list: unknown[];
  if (Array.isArray(parsed)) list = parsed;
  else if (parsed && typeof parsed === "object" && "items" in parsed && Array.isArray(parsed.items)) {
    list = parsed.items;
    full = "full" in parsed && parsed.full === true;
  } else list = [parsed];
  return { full, items: list.filter((c): c is RuntimeItem => !!c && typeof c === "object" && "plot_type" in c) };
}

export interface Runtime {
  cards: Map<string, RuntimeItem>;
  connection: Connection;
  lastUpdate: Date | null;
  error: string;
}

/** Live Run-page cards; `onNewBad` is called with plot types that just turned confirmed Bad. */
export function useRuntime(alarmLabels: ReadonlySet<string>, onNewBad: (plotTypes: string[]) => void): Runtime {
  const [cards, setCards] = useState<Map<string, RuntimeItem>>(readCache);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [lastUpdate, setLastUpdate] = useState<Date | null>(null);
  const [error, setError] = useState("");
  const current = useRef(cards);
  const loadedOnce = useRef(false);

  const apply = useEffectEvent((changed: RuntimeItem[], replace: boolean) => {
    const before = current.current;
    const fresh = loadedOnce.current ? newConfirmedBad(before, changed, alarmLabels) : [];
    const base = replace ? new Map<string, RuntimeItem>() : before;
    const next = mergeCards(base, changed);
    if (replace && next.size === 0 && before.size > 0) {
      // An empty answer (tables cleaned up) must not blank the wall: keep the old cards, stale.
      for (const [k, c] of before) next.set(k, { ...c, stale: true });
    }
    loadedOnce.current = true;
    current.current = next;
    setCards(next);
    setLastUpdate(new Date());
    writeCache(next);
    if (fresh.length > 0) onNewBad(fresh);
  });

  const loadAll = useEffectEvent((signal: AbortSignal) => {
    ok(api.GET("/api/runtime", { signal })).then(
      (page) => {
        setError("");
        apply(page.items, true);
      },
      (err: unknown) => {
        if (!signal.aborted) setError(errorText(err));
      },
    );
  });

  useEffect(() => {
    const ctl = new AbortController();
    let source: EventSource | null = null;
    let retry: number | undefined;
    const connect = () => {
      const es = new EventSource("/api/events");
      source = es;
      // The stream starts with a full snapshot, so a reconnect resynchronises by itself.
      es.onopen = () => setConnection("live");
      es.onerror = () => {
        if (es.readyState !== EventSource.CLOSED) {
          setConnection("reconnecting");
          return;
        }
        // The browser gives up on a refused stream (API down, 5xx): try again ourselves.
        setConnection("offline");
        retry = window.setTimeout(connect, 5000);
      };
      es.addEventListener("runtime", (ev) => {
        try {
          const event = parseRuntimeEvent((ev as MessageEvent<string>).data);
          apply(event.items, event.full);
        } catch {
          setError("could not read a runtime event");
        }
      });
    };
    loadAll(ctl.signal);
    connect();
    return () => {
      ctl.abort();
      window.clearTimeout(retry);
      source?.close();
    };
  }, []);

  return { cards, connection, lastUpdate, error };
}
