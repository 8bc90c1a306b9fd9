/** An error or hint line; renders nothing for an empty message. */
export function Notice({ text, kind = "error" }: { text: string; kind?: "error" | "info" }) {
  if (!text) return null;
  return (
    <p className={`notice notice-${kind}`} data-testid={kind === "error" ? "error" : "info"} role={kind === "error" ? "alert" : "status"}>
      {text}
    </p>
  );
}
