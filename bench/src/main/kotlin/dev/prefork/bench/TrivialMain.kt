package dev.prefork.bench

/**
 * The JVM start-up reference of the `restart` benchmark: a `main` that does nothing, started
 * from the same jar with the same flags as a worker, so the difference is prefork's own.
 */
fun main() {}
