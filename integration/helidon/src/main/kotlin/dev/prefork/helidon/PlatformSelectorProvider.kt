package dev.prefork.helidon

import java.nio.channels.spi.SelectorProvider

/**
 * The JDK's own `SelectorProvider`, which `SelectorProvider.provider()` returns when no other is
 * named, and which [PreforkSelectorProvider] hands everything to. The JDK exposes it only as
 * `sun.nio.ch.DefaultSelectorProvider.get()`.
 */
internal object PlatformSelectorProvider {
    private const val ADD_OPENS = "--add-opens java.base/sun.nio.ch=ALL-UNNAMED"

    /** Looked up at the first call; a failed lookup fails every call the same way. */
    private val lookup: Result<SelectorProvider> by lazy {
        runCatching {
            Class.forName("sun.nio.ch.DefaultSelectorProvider").getMethod("get").invoke(null) as SelectorProvider
        }
    }

    fun get(): SelectorProvider = lookup.getOrElse { cause ->
        throw IllegalStateException(
            "prefork-helidon cannot reach the JDK's own SelectorProvider (sun.nio.ch.DefaultSelectorProvider.get()): " +
                "start java with $ADD_OPENS, or put Add-Opens: java.base/sun.nio.ch in the jar's manifest",
            cause,
        )
    }
}
