package dev.edgekit.example

import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.json.JSONObject

/**
 * The metadata edgekit embeds in a .tflite file: the flatbuffer's `metadata` entry named
 * "edgekit_metadata", whose buffer holds JSON (labels, input_shape, layout, scale, mean, std,
 * color, output, dataset, artifact_id). A minimal flatbuffer walk, no extra library needed;
 * field numbers follow tensorflow/lite/schema/schema.fbs (Model.buffers = 4, Model.metadata = 6).
 */
data class EdgekitMetadata(
    val labels: List<String>,
    val height: Int,
    val width: Int,
    val channels: Int,
    val scale: Float,
    val mean: Float,
    val std: Float,
    val logits: Boolean,
) {
    companion object {
        fun read(model: ByteBuffer): EdgekitMetadata? {
            val buf = model.duplicate().order(ByteOrder.LITTLE_ENDIAN)
            val root = buf.getInt(0)
            val metadata = vector(buf, field(buf, root, 6)) ?: return null
            val buffers = vector(buf, field(buf, root, 4)) ?: return null
            for (i in 0 until metadata.second) {
                val entry = table(buf, metadata.first + 4 * i)
                val name = string(buf, field(buf, entry, 0)) ?: continue
                if (name != "edgekit_metadata") continue
                val index = field(buf, entry, 1).let { if (it == 0) 0 else buf.getInt(it) }
                val data = vector(buf, field(buf, table(buf, buffers.first + 4 * index), 0)) ?: return null
                val bytes = ByteArray(data.second) { k -> buf.get(data.first + k) }
                return parse(JSONObject(String(bytes, Charsets.UTF_8)))
            }
            return null
        }

        private fun parse(json: JSONObject): EdgekitMetadata {
            val labels = json.getJSONArray("labels").let { a -> List(a.length()) { a.getString(it) } }
            val shape = json.getJSONArray("input_shape")  // NHWC without batch: [H, W, C]
            return EdgekitMetadata(
                labels, shape.getInt(0), shape.getInt(1), shape.getInt(2),
                json.optDouble("scale", 1.0 / 255).toFloat(), json.optDouble("mean", 0.0).toFloat(),
                json.optDouble("std", 1.0).toFloat(), json.optString("output") == "logits",
            )
        }

        /** Absolute position of field [i] of the table at [pos], or 0 when absent. */
        private fun field(buf: ByteBuffer, pos: Int, i: Int): Int {
            val vtable = pos - buf.getInt(pos)
            val off = 4 + 2 * i
            if (off >= buf.getShort(vtable).toInt()) return 0
            val rel = buf.getShort(vtable + off).toInt() and 0xFFFF
            return if (rel == 0) 0 else pos + rel
        }

        private fun table(buf: ByteBuffer, at: Int) = at + buf.getInt(at)

        /** (first element position, length) of the vector referenced at [at]. */
        private fun vector(buf: ByteBuffer, at: Int): Pair<Int, Int>? {
            if (at == 0) return null
            val v = at + buf.getInt(at)
            return Pair(v + 4, buf.getInt(v))
        }

        private fun string(buf: ByteBuffer, at: Int): String? =
            vector(buf, at)?.let { (start, n) -> String(ByteArray(n) { buf.get(start + it) }, Charsets.UTF_8) }
    }
}
