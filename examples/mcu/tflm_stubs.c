/* ====================================================================================
 * STUBS -- NOT TensorFlow Lite Micro. No inference happens here.
 *
 * These stand in for the interpreter so the firmware skeleton compiles and runs on any
 * machine with a C compiler. tflm_init() does check what real TFLM would reject first
 * (the "TFL3" flatbuffer identifier and 16-byte alignment); tflm_invoke() only writes
 * uniform scores. Replace this file with a C++ implementation over
 * tflite::MicroInterpreter (README.md, "Swapping in real TFLM").
 * ==================================================================================== */
#include <stdint.h>
#include <string.h>

#include "tflm_api.h"

#define STUB_INPUT_COUNT (28 * 28 * 1)
#define STUB_OUTPUT_COUNT 10

static float stub_input[STUB_INPUT_COUNT];
static float stub_output[STUB_OUTPUT_COUNT];
static int stub_ready = 0;

int tflm_init(const unsigned char* model, unsigned int model_len, unsigned char* arena, size_t arena_size) {
  (void)arena_size;
  if (model_len < 8 || memcmp(model + 4, "TFL3", 4) != 0) return 1; /* not a TFLite flatbuffer */
  if ((uintptr_t)model % 16 != 0 || (uintptr_t)arena % 16 != 0) return 2; /* TFLM needs 16-byte alignment */
  stub_ready = 1;
  return 0;
}

float* tflm_input(size_t* count) {
  *count = STUB_INPUT_COUNT;
  return stub_input;
}

int tflm_invoke(void) {
  size_t i;
  if (!stub_ready) return 1;
  for (i = 0; i < STUB_OUTPUT_COUNT; i++) stub_output[i] = 1.0f / STUB_OUTPUT_COUNT; /* STUB: no model runs */
  return 0;
}

const float* tflm_output(size_t* count) {
  *count = STUB_OUTPUT_COUNT;
  return stub_output;
}
