import { Link } from "react-router-dom";

export function NotFoundPage() {
  return (
    <section className="page">
      <h1>Not found</h1>
      <p>
        No such page. Back to the <Link to="/">Run page</Link>.
      </p>
    </section>
  );
}
