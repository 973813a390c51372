package dev.prefork.reaper

import dev.prefork.log.error
import dev.prefork.log.logger
import kotlinx.coroutines.CoroutineExceptionHandler
import kotlinx.coroutines.CoroutineName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob

private val logger = logger("dev.prefork.reaper.Background")

/**
 * Where prefork's own coroutines live: pipe pumps, exit callbacks, grace-period timers.
 * A failure in one is logged and touches no other.
 */
internal val Background: CoroutineScope = CoroutineScope(
    SupervisorJob() + Dispatchers.IO + CoroutineName("prefork") +
        CoroutineExceptionHandler { _, t -> logger.error(t) { "prefork background task failed" } },
)
