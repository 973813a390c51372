package dev.prefork

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldNotBeEmpty
import io.kotest.matchers.shouldBe
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.extension
import kotlin.io.path.isRegularFile
import kotlin.io.path.readText

/**
 * The repository's Markdown (README.md, docs/, bench/README.md) links only to files that exist
 * and to headings that exist in them, as GitHub renders them. Links out of the repository
 * (http, mailto) are not followed: this machine may have no network.
 */
class DocsLinksTest : FunSpec({
    val root = Path.of("..").toAbsolutePath().normalize()
    val pages = buildList {
        add(root.resolve("README.md"))
        add(root.resolve("bench/README.md"))
        Files.list(root.resolve("docs")).use { files -> addAll(files.filter { it.extension == "md" }.sorted().toList()) }
    }

    test("every link between the repository's pages finds its file and its heading") {
        pages.shouldNotBeEmpty()
        val broken = pages.flatMap { page ->
            links(page.readText()).mapNotNull { link ->
                val target = link.substringBefore('#')
                val anchor = link.substringAfter('#', "").takeIf { it.isNotEmpty() }
                val file = if (target.isEmpty()) page else page.parent.resolve(target).normalize()
                when {
                    !Files.exists(file) -> "${root.relativize(page)}: $link (no such file)"
                    anchor != null && file.isRegularFile() && file.extension == "md" && anchor !in anchors(file.readText()) ->
                        "${root.relativize(page)}: $link (no such heading in ${root.relativize(file)})"
                    else -> null
                }
            }
        }
        withClue("links that lead nowhere") { broken.joinToString("\n") shouldBe "" }
    }
}) {
    private companion object {
        private val LINK = Regex("""\[[^\]]*]\(([^)\s]+)(?:\s+"[^"]*")?\)""")
        private val FENCE = Regex("(?ms)^```.*?^```")

        /** The targets of inline links outside code blocks and code spans, but those leaving the repository. */
        fun links(markdown: String): List<String> = LINK.findAll(markdown.replace(FENCE, "").replace(Regex("`[^`\n]*`"), ""))
            .map { it.groupValues[1] }
            .filterNot { it.startsWith("http:") || it.startsWith("https:") || it.startsWith("mailto:") }
            .toList()

        /** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
        fun anchors(markdown: String): Set<String> {
            val seen = HashMap<String, Int>()
            return markdown.replace(FENCE, "").lines().filter { it.startsWith("#") }.map { heading ->
                val slug = heading.trimStart('#').trim().lowercase()
                    .replace(Regex("""\[([^\]]*)]\([^)]*\)"""), "$1")
                    .replace(Regex("[^\\p{L}\\p{N} _-]"), "")
                    .replace(' ', '-')
                val n = seen.merge(slug, 1, Int::plus)!! - 1
                if (n == 0) slug else "$slug-$n"
            }.toSet()
        }
    }
}
