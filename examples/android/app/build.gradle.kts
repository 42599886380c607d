// Only what this example adds to an ordinary Android app module (not built here: no Android SDK).
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.edgekit.example"
    compileSdk = 35
    defaultConfig {
        applicationId = "dev.edgekit.example"
        minSdk = 24
    }
    androidResources {
        noCompress += "tflite"  // the Interpreter memory-maps the model from the APK
    }
}

dependencies {
    implementation("com.google.ai.edge.litert:litert:1.4.0")  // LiteRT; keeps the org.tensorflow.lite API
}
