// The typed API client: openapi-fetch over the generated schema, with the CSRF header that
// the API requires on every mutating request (double-submit cookie `hydra_csrf`).
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "../api/schema";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The value of a cookie of this page, or "" when it is not set. */
export function readCookie(name: string, cookies: string = document.cookie): string {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!SAFE_METHODS.has(request.method)) {
      request.headers.set("X-CSRF-Token", readCookie("hydra_csrf"));
    }
    return request;
  },
};

/** The one client every page uses (same origin: the API serves this front end). */
export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** An HTTP error from the API, with the status and the API's message. */
export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

function detailOf(error: unknown, fallback: string): string {
  if (error && typeof error === "object" && "detail" in error) {
    const detail = (error as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d && typeof d === "object" && "msg" in d ? String(d.msg) : String(d))).join("; ");
    }
  }
  return fallback;
}

/** Resolves to the response's data, or throws ApiError with the API's message. */
export async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || data === undefined) {
    throw new ApiError(response.status, detailOf(error, `${response.status} ${response.statusText}`));
  }
  return data;
}

/** A readable message for anything a call can throw. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    return err.status === 401 ? "Please log in." : err.status === 403 ? `Not permitted: ${err.message}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
