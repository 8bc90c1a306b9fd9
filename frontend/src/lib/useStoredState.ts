// State that survives a reload (wall-screen settings: hidden cards, filters, overlay, alarm).
import { useEffect, useState } from "react";

export function useStoredState<T>(key: string, initial: T): [T, (value: T | ((old: T) => T)) => void] {
  const [value, setValue] = useState<T>(() => {
    try {
      const raw = localStorage.getItem(`hydra.${key}`);
      return raw === null ? initial : (JSON.parse(raw) as T);
    } catch {
      return initial;
    }
  });
  useEffect(() => {
    try {
      localStorage.setItem(`hydra.${key}`, JSON.stringify(value));
    } catch {
      // Storage disabled: the setting lasts for this page only.
    }
  }, [key, value]);
  return [value, setValue];
}
