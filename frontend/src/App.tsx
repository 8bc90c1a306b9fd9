import { BrowserRouter, Route, Routes } from "react-router-dom";
import { Layout } from "./components/Layout";
import { AuthProvider } from "./lib/auth";
import { AdminPage } from "./pages/admin/AdminPage";
import { LabelerPage } from "./pages/LabelerPage";
import { LabelsPage } from "./pages/LabelsPage";
import { LibraryPage } from "./pages/LibraryPage";
import { LogPage } from "./pages/LogPage";
import { LoginPage } from "./pages/LoginPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ReportPage } from "./pages/ReportPage";
import { RunPage } from "./pages/RunPage";
import { StatusPage } from "./pages/StatusPage";

export function App() {
  return (
    <AuthProvider>
      <BrowserRouter>
        <Routes>
          <Route element={<Layout />}>
            <Route index element={<RunPage />} />
            <Route path="run" element={<RunPage />} />
            <Route path="labeler" element={<LabelerPage />} />
            <Route path="library" element={<LibraryPage />} />
            <Route path="labels" element={<LabelsPage />} />
            <Route path="report/:modelId" element={<ReportPage />} />
            <Route path="log" element={<LogPage />} />
            <Route path="status" element={<StatusPage />} />
            <Route path="admin/*" element={<AdminPage />} />
            <Route path="login" element={<LoginPage />} />
            <Route path="*" element={<NotFoundPage />} />
          </Route>
        </Routes>
      </BrowserRouter>
    </AuthProvider>
  );
}
