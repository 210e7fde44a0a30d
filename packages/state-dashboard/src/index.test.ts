import { expect, test } from "vitest";
import { dashboardFiles } from "./index.js";

test("reads the page, its module and its style sheet, each with its content type", () => {
  const files = dashboardFiles();
  expect(files.get("index.html")?.contentType).toBe("text/html; charset=utf-8");
  expect(files.get("dashboard.js")?.contentType).toBe("text/javascript; charset=utf-8");
  expect(files.get("dashboard.css")?.contentType).toBe("text/css; charset=utf-8");
  expect(files.get("index.html")?.body.toString()).toContain('src="dashboard/dashboard.js"');
});

test("the page loads nothing from another origin: it must work offline", () => {
  for (const [name, file] of dashboardFiles()) {
    expect(file.body.toString(), name).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//);
    expect(file.body.toString(), name).not.toMatch(/import\s[^;]*["']https?:/);
  }
});
