rootProject.name = "kotlin-gradle-consumer"
