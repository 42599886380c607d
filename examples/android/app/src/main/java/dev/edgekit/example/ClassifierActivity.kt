package dev.edgekit.example

import android.app.Activity
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Color
import android.os.Bundle
import android.os.SystemClock
import android.widget.TextView
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import kotlin.math.exp
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter

/**
 * Classifies assets/digit.png with assets/model.tflite (an edgekit export) using the LiteRT
 * Interpreter; labels and preprocessing come from the metadata inside the model file.
 */
class ClassifierActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val model = loadModel("model.tflite")
        val meta = EdgekitMetadata.read(model)
            ?: error("model.tflite has no edgekit metadata: export it with edgekit")
        val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(2))
        val bitmap = assets.open("digit.png").use { BitmapFactory.decodeStream(it) }

        val input = interpreter.getInputTensor(0)
        val output = interpreter.getOutputTensor(0)
        val x = toInput(bitmap, meta, input.dataType(), input.quantizationParams().scale, input.quantizationParams().zeroPoint)
        val y = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder())

        val t0 = SystemClock.elapsedRealtimeNanos()
        interpreter.run(x, y)
        val ms = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6

        var scores = readScores(y, output.dataType(), output.quantizationParams().scale, output.quantizationParams().zeroPoint)
        if (meta.logits) scores = softmax(scores)
        val best = scores.indices.maxByOrNull { scores[it] } ?: 0
        findViewById<TextView>(android.R.id.text1)?.text =
            "%s  %.3f  %.2f ms".format(meta.labels[best], scores[best], ms)
        interpreter.close()
    }

    private fun loadModel(name: String): MappedByteBuffer {
        val fd = assets.openFd(name)  // keep .tflite uncompressed: androidResources { noCompress += "tflite" }
        return FileInputStream(fd.fileDescriptor).channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
    }

    /** Pixels → (x * scale - mean) / std, NHWC, quantized when the model takes int8/uint8 input. */
    private fun toInput(bitmap: Bitmap, meta: EdgekitMetadata, type: DataType, qScale: Float, qZero: Int): ByteBuffer {
        val scaled = Bitmap.createScaledBitmap(bitmap, meta.width, meta.height, true)
        val bytesPerValue = if (type == DataType.FLOAT32) 4 else 1
        val buf = ByteBuffer.allocateDirect(meta.width * meta.height * meta.channels * bytesPerValue).order(ByteOrder.nativeOrder())
        for (yy in 0 until meta.height) for (xx in 0 until meta.width) {
            val p = scaled.getPixel(xx, yy)
            val rgb = floatArrayOf(Color.red(p).toFloat(), Color.green(p).toFloat(), Color.blue(p).toFloat())
            val values = if (meta.channels == 1) floatArrayOf((rgb[0] + rgb[1] + rgb[2]) / 3f) else rgb
            for (v in values) {
                val f = (v * meta.scale - meta.mean) / meta.std
                when (type) {
                    DataType.FLOAT32 -> buf.putFloat(f)
                    DataType.INT8 -> buf.put((f / qScale + qZero).toInt().coerceIn(-128, 127).toByte())
                    DataType.UINT8 -> buf.put((f / qScale + qZero).toInt().coerceIn(0, 255).toByte())
                    else -> error("unsupported input type $type")
                }
            }
        }
        return buf.rewind() as ByteBuffer
    }

    private fun readScores(y: ByteBuffer, type: DataType, scale: Float, zero: Int): FloatArray {
        y.rewind()
        return when (type) {
            DataType.FLOAT32 -> FloatArray(y.capacity() / 4) { y.getFloat() }
            DataType.INT8 -> FloatArray(y.capacity()) { (y.get() - zero) * scale }
            DataType.UINT8 -> FloatArray(y.capacity()) { ((y.get().toInt() and 0xFF) - zero) * scale }
            else -> error("unsupported output type $type")
        }
    }

    private fun softmax(z: FloatArray): FloatArray {
        val m = z.maxOrNull() ?: 0f
        val e = z.map { exp((it - m).toDouble()).toFloat() }
        val s = e.sum()
        return e.map { it / s }.toFloatArray()
    }
}
