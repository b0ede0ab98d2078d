/** Test support for content items: one with every field blank but those given. */
import { Content } from "../../src/domain/model.js"

/** A content item with every field but those given at its blank value (an article, public, no front matter). */
export const blankContent = (fields: Pick<Content, "source" | "slug" | "path"> & Partial<Content>) =>
  new Content({
    format: "none",
    head: "",
    title: "",
    kind: "article",
    description: "",
    author: "",
    keywords: [],
    image: null,
    public: true,
    tags: [],
    published_at: null,
    updated_at: null,
    extra: {},
    body: "",
    ...fields
  })
