// The Kotlin consumer (../kotlin-maven's sources and test) built by Gradle, as a Gradle user's
// build takes prefork. Run by GradleConsumerTest, which passes the three properties below.
plugins {
    kotlin("jvm") version "2.3.21"
}

val preforkRepository: String = providers.gradleProperty("preforkRepository").get()
val preforkVersion: String = providers.gradleProperty("preforkVersion").get()
val nativeFlags: String = providers.gradleProperty("nativeFlags").get()

repositories {
    // the artifacts of this build, installed as published (GradleConsumerTest points
    // maven.repo.local there); nothing else comes from there
    mavenLocal {
        content { includeGroup("dev.prefork") }
    }
    mavenCentral()
}

dependencies {
    implementation("dev.prefork:prefork:$preforkVersion")
    runtimeOnly("org.slf4j:slf4j-simple:2.0.17")
    testImplementation("org.junit.jupiter:junit-jupiter:5.13.4")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17) }
    sourceSets["main"].kotlin.srcDir("../kotlin-maven/src/main/kotlin")
    sourceSets["test"].kotlin.srcDir("../kotlin-maven/src/test/kotlin")
}
java { targetCompatibility = JavaVersion.VERSION_17 }

tasks.test {
    useJUnitPlatform()
    jvmArgs(nativeFlags.trim().split(Regex("\\s+")))
    systemProperty("app.classpath", sourceSets["main"].runtimeClasspath.asPath)
    // the app must call C through prefork's JNI library, loaded from the published jar: no fall-back
    systemProperty("app.jvmFlags", "$nativeFlags -Dprefork.native=jni")
    systemProperty("app.repository", preforkRepository)
    testLogging { events("passed", "skipped", "failed") }
}
