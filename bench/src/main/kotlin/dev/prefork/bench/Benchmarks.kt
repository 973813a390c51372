package dev.prefork.bench
fun main() {}
