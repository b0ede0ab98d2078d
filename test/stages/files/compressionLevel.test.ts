import { describe, expect, it } from "vitest"
import { isLoopback, LINK_LEVEL, LOOPBACK_LEVEL, levelFor } from "../../../src/stages/files/archive.js"

describe("the gzip level a link pays for", () => {
  it("stores on loopback and compresses on any other link", () => {
    for (const host of ["127.0.0.1", "127.8.0.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]) {
      expect([host, isLoopback(host), levelFor(host)]).toEqual([host, true, LOOPBACK_LEVEL])
    }
    for (const host of ["10.0.0.1", "example.com", "::ffff:10.1.2.3", "128.0.0.1", "localhost.example.com", ""]) {
      expect([host, isLoopback(host), levelFor(host)]).toEqual([host, false, LINK_LEVEL])
    }
  })
})
