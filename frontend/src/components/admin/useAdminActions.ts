import { useCallback, useState } from "react";
import { errorText } from "../../lib/client";

/** What an admin page's changes share: the list's version (in its query key, so a change
 * reloads it) and the last change's error. */
export interface AdminActions {
  version: number;
  error: string;
  /** Run a change: on success the error clears and the list reloads; on failure the error
   * says why. Resolves to whether it succeeded, so a form clears only what was saved. */
  act: (call: () => Promise<unknown>) => Promise<boolean>;
  /** As `act`, but without reloading the list (for a change to something else). */
  attempt: (call: () => Promise<unknown>) => Promise<boolean>;
}

export function useAdminActions(): AdminActions {
  const [version, setVersion] = useState(0);
  const [error, setError] = useState("");
  const attempt = useCallback(async (call: () => Promise<unknown>) => {
    try {
      await call();
      setError("");
      return true;
    } catch (err) {
      setError(errorText(err));
      return false;
    }
  }, []);
  const act = useCallback(
    async (call: () => Promise<unknown>) => {
      const done = await attempt(call);
      if (done) setVersion((v) => v + 1);
      return done;
    },
    [attempt],
  );
  return { version, error, act, attempt };
}
