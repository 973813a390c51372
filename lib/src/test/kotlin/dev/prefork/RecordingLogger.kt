package dev.prefork

import org.slf4j.Marker
import org.slf4j.event.Level
import org.slf4j.helpers.LegacyAbstractLogger

/** An SLF4J logger, every level on, that keeps what it was given: the level and message of each call, in call order. */
class RecordingLogger(name: String = "recording") : LegacyAbstractLogger() {
    data class Record(val level: Level, val message: String)

    private val calls = ArrayList<Record>()

    init {
        this.name = name
    }

    fun records(): List<Record> = synchronized(calls) { ArrayList(calls) }

    fun messages(): List<String> = records().map { it.message }

    override fun isTraceEnabled(): Boolean = true
    override fun isDebugEnabled(): Boolean = true
    override fun isInfoEnabled(): Boolean = true
    override fun isWarnEnabled(): Boolean = true
    override fun isErrorEnabled(): Boolean = true

    override fun getFullyQualifiedCallerName(): String? = null

    override fun handleNormalizedLoggingCall(level: Level, marker: Marker?, messagePattern: String, arguments: Array<out Any?>?, throwable: Throwable?) {
        // A call with arguments would be a format: record it visibly wrong.
        val message = if (arguments.isNullOrEmpty()) messagePattern else "$messagePattern with ${arguments.toList()}"
        synchronized(calls) { calls.add(Record(level, message)) }
    }
}
