/** Previous / next paging for lists the API pages with limit and offset. */
export function Pager({
  offset,
  limit,
  total,
  onChange,
}: {
  offset: number;
  limit: number;
  total: number;
  onChange: (offset: number) => void;
}) {
  const last = Math.min(offset + limit, total);
  return (
    <div className="pager" data-testid="pager">
      <button type="button" disabled={offset <= 0} onClick={() => onChange(Math.max(0, offset - limit))} data-testid="page-prev">
        ‹ Previous
      </button>
      <span data-testid="page-info">
        {total === 0 ? "none" : `${offset + 1}–${last} of ${total.toLocaleString()}`}
      </span>
      <button type="button" disabled={last >= total} onClick={() => onChange(offset + limit)} data-testid="page-next">
        Next ›
      </button>
    </div>
  );
}
