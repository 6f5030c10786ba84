import { describe, expect, it } from "vitest";
import {
  Code,
  isPermanentCode,
  isProtoeventsError,
  PermanentError,
  ProtoeventsError,
} from "../../runtime/src/errors.js";
import { codePointLength } from "../../runtime/src/text.js";
import { uuidv7 } from "../../runtime/src/uuidv7.js";

describe("uuidv7", () => {
  it("should produce RFC 9562 version 7 ids", () => {
    expect(uuidv7()).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it("should carry the current time in its first 48 bits", () => {
    const before = Date.now();
    const id = uuidv7();
    const ms = Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now() + 1);
  });

  it("should sort in creation order, also within one millisecond", () => {
    const ids = Array.from({ length: 20_000 }, () => uuidv7());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("codePointLength", () => {
  it.each([
    ["", 0],
    ["abc", 3],
    ["😀", 1],
    ["a😀b", 3],
    ["\uD800", 1], // a lone surrogate still counts once
  ])("should count %j as %i", (text, expected) => {
    expect(codePointLength(text)).toBe(expected);
  });
});

describe("ProtoeventsError", () => {
  it("should put the code in front of the message and keep the cause", () => {
    const cause = new Error("socket hang up");
    const error = new ProtoeventsError(Code.PublishFailed, "topic x refused", { cause });
    expect(error.message).toBe("[publish_failed] topic x refused");
    expect(error.rawMessage).toBe("topic x refused");
    expect(error.cause).toBe(cause);
    expect(error.permanent).toBe(false);
  });

  it("should normalise anything thrown with from()", () => {
    expect(ProtoeventsError.from("boom").message).toBe("[internal] boom");
    expect(ProtoeventsError.from(new Error("x"), Code.HandlerFailed).code).toBe(Code.HandlerFailed);
    const original = new PermanentError("gone");
    expect(ProtoeventsError.from(original)).toBe(original);
  });

  it("should recognise an error from another copy of the package by name and code", () => {
    const foreign = Object.assign(new Error("[permanent] x"), {
      name: "ProtoeventsError",
      code: "permanent",
    });
    expect(isProtoeventsError(foreign)).toBe(true);
    expect(
      isProtoeventsError(Object.assign(new Error("x"), { name: "ProtoeventsError", code: "nope" })),
    ).toBe(false);
    expect(isProtoeventsError(new Error("x"))).toBe(false);
  });

  it("should classify permanent failures in one table", () => {
    expect(
      [Code.DecodeFailed, Code.UnknownEventType, Code.ValidationFailed, Code.Permanent].every(
        isPermanentCode,
      ),
    ).toBe(true);
    expect(
      [Code.HandlerFailed, Code.PublishFailed, Code.PubSubUnavailable].some(isPermanentCode),
    ).toBe(false);
    expect(new PermanentError("x").permanent).toBe(true);
  });
});
