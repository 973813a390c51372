package dev.prefork.samples
fun main() {}
