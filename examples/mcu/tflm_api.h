/* The four calls main.c makes to the interpreter: a small C API over TensorFlow Lite Micro.
 *
 * tflm_stubs.c implements it with STUBS (no inference) so this example builds with any C
 * compiler; a real build implements the same functions in C++ with tflite::MicroInterpreter
 * (see README.md, "Swapping in real TFLM"). */
#ifndef TFLM_API_H_
#define TFLM_API_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set up the interpreter on a 16-byte aligned model and tensor arena; 0 on success. */
int tflm_init(const unsigned char* model, unsigned int model_len, unsigned char* arena, size_t arena_size);

/* The model's float input buffer and its element count (28*28*1 for the MNIST-style models). */
float* tflm_input(size_t* count);

/* Run one inference; 0 on success. */
int tflm_invoke(void);

/* The model's float output scores and their count (one per label). */
const float* tflm_output(size_t* count);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_API_H_ */
