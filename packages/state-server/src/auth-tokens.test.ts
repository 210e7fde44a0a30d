import { describe, expect, test } from "vitest";
import { AuthTokens, TokenFileError } from "./auth-tokens.js";

const all = "aaaaaaaaaaaaaaaa-everything";
const checkout = "bbbbbbbbbbbbbbbb-checkout";
const file = `# tokens\n${all}\n\n${checkout} checkout,checkout-canary\n`;

describe("a token file", () => {
  const tokens = AuthTokens.parse(file, "tokens.txt");

  test("accepts every token it lists, in any namespace unless the line names some", () => {
    expect(tokens.size).toBe(2);
    expect(tokens.check(`Bearer ${all}`, "")).toEqual({ ok: true });
    expect(tokens.check(`Bearer ${all}`, "search")).toEqual({ ok: true });
    expect(tokens.check(`bearer  ${checkout} `, "checkout-canary")).toEqual({ ok: true });
  });

  test("refuses a missing, malformed or unknown token, and a namespace the token may not use", () => {
    expect(tokens.check(null, "")).toEqual({ ok: false, refusal: "missing" });
    expect(tokens.check("Basic abc", "")).toEqual({ ok: false, refusal: "missing" });
    expect(tokens.check(`Bearer ${all}x`, "")).toEqual({ ok: false, refusal: "unknown" });
    expect(tokens.check(`Bearer ${checkout}`, "search")).toEqual({
      ok: false,
      refusal: "namespace",
    });
  });

  test("a revoked token (a line removed, file read again) is refused", () => {
    const after = AuthTokens.parse(`${checkout} checkout\n`, "tokens.txt");
    expect(after.check(`Bearer ${all}`, "")).toEqual({ ok: false, refusal: "unknown" });
  });

  test.each([
    ["", "no tokens"],
    ["# only a comment\n", "no tokens"],
    ["short\n", "tokens.txt:1: token shorter than 16 characters"],
    [`${all} ns extra\n`, "tokens.txt:1: expected"],
  ])("refuses %j, naming the line but never the token", (text, message) => {
    expect(() => AuthTokens.parse(text, "tokens.txt")).toThrow(TokenFileError);
    expect(() => AuthTokens.parse(text, "tokens.txt")).toThrow(message);
    try {
      AuthTokens.parse(text, "tokens.txt");
    } catch (error) {
      expect((error as Error).message).not.toContain(all);
    }
  });
});
